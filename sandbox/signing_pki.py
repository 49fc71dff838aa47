"""The test PKI as the signing sandboxes see it (loaded lazily from DVCI_SIGN_PKI_DIR, default .dvci/pki)."""

from __future__ import annotations

import abc
import asyncio
import os
from functools import cached_property
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.base import Simulator


def pki_dir() -> Path:
    return Path(os.environ.get("DVCI_SIGN_PKI_DIR", ".dvci/pki"))


class SandboxPki:
    """Certificates and keys of the test PKI (dev only: the sandboxes sign CRLs, OCSP and TSA replies)."""

    def __init__(self, folder: Path | None = None):
        self._folder = folder
        self._cache: dict[str, Any] = {}  # parsing an RSA key costs ~40 ms: once per process

    @property
    def folder(self) -> Path:
        """Given, or DVCI_SIGN_PKI_DIR read at first use (`dvci dev` makes its PKI after starting the sandbox)."""
        if self._folder is None:
            self._folder = pki_dir()
        return self._folder

    @cached_property
    def manifest(self) -> dict[str, Any]:
        from shared.integrations.signature import pki

        return pki.load_manifest(self.folder)

    def cert(self, name: str) -> x509.Certificate:
        from shared.integrations.signature import pki

        if f"c:{name}" not in self._cache:
            self._cache[f"c:{name}"] = pki.load_cert(self.folder / f"{name}.pem")
        return self._cache[f"c:{name}"]  # type: ignore[no-any-return]

    def key(self, name: str) -> rsa.RSAPrivateKey:
        from shared.integrations.signature import pki

        if f"k:{name}" not in self._cache:
            self._cache[f"k:{name}"] = pki.load_key(self.folder / f"{name}.key.pem")
        return self._cache[f"k:{name}"]  # type: ignore[no-any-return]

    def revoked(self) -> dict[int, dict[str, Any]]:
        return {int(r["serial"]): r for r in self.manifest.get("revoked", [])}


class OfficialPhone:
    """The official's phone, as the remote-signing sandboxes simulate it: each new transaction is one
    confirmation request; `confirm(tx, approve)` signs the hash with the test PKI's remote key (or refuses);
    `auto` approves (True) or rejects (False) every new request after `auto_delay_ms`; None waits."""

    def __init__(self, pki: SandboxPki):
        self.pki = pki
        self.transactions: dict[str, dict[str, Any]] = {}
        self.auto: bool | None = None
        self.auto_delay_ms = 200.0
        self.ttl_s = 300.0

    def ask(self, tx: str, digest: bytes, user_id: str, ref: str) -> tuple[dict[str, Any], bool]:
        """Register a confirmation request once per transaction id: (the transaction, True if duplicate)."""
        import time

        existing = self.transactions.get(tx)
        if existing is not None:
            return existing, True
        entry = {"tx": tx, "ref": ref, "digest": digest, "user_id": user_id, "status": "pending",
                 "signature": None, "created": time.time()}
        self.transactions[tx] = entry
        return entry, False

    def decide(self, tx: str, approve: bool) -> dict[str, Any]:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, utils

        entry = self.transactions[tx]
        if entry["status"] != "pending":
            return entry
        if approve:
            key = self.pki.key("remote-official")
            entry["signature"] = key.sign(entry["digest"], padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
            entry["status"] = "signed"
        else:
            entry["status"] = "rejected"
        return entry

    def current(self, tx: str) -> dict[str, Any] | None:
        import time

        entry = self.transactions.get(tx)
        if entry is not None and entry["status"] == "pending" and time.time() - entry["created"] > self.ttl_s:
            entry["status"] = "expired"
        return entry

    def clear(self) -> None:
        self.transactions.clear()
        self.auto = None


async def post_webhook(url: str, secret: str, payload: dict[str, Any]) -> int | None:
    """POST a signed callback (the webhook module's own signing helper)."""
    import aiohttp
    import orjson

    from shared.security.webhooks import WebhookAuth, signed_headers

    body = orjson.dumps(payload)
    headers = {"content-type": "application/json", **signed_headers(WebhookAuth(secret=secret), body)}
    try:
        async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as r:
            return r.status
    except aiohttp.ClientError:
        return None


class RemoteSignerSimulator(Simulator):
    """What the SmartCA and MySign simulators share: the official's phone (approve / reject / auto), the signed
    callback to the function, and the control routes `/_sandbox/confirm`, `/_sandbox/auto`,
    `/_sandbox/transactions`. Subclasses give the provider's own routes and `_payload` (its callback shape)."""

    webhook_secret = ""
    ref_field = "ref"  # the provider's name for its own reference in the transactions list

    def __init__(self, pki: SandboxPki | None = None, **kw: Any):
        super().__init__(**kw)
        self.pki = pki or SandboxPki()
        self.phone = OfficialPhone(self.pki)

    def control_routes(self) -> list[tuple[str, str, Any]]:
        return [("POST", "/_sandbox/confirm", self.confirm), ("POST", "/_sandbox/auto", self.set_auto),
                ("GET", "/_sandbox/transactions", self.list_transactions)]

    @abc.abstractmethod
    def _payload(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The provider's callback / status shape for a transaction."""

    def _maybe_auto(self, tx: str) -> None:
        if self.phone.auto is None:
            return
        approve = self.phone.auto

        async def later() -> None:
            await asyncio.sleep(self.phone.auto_delay_ms / 1000)
            await self._decide(tx, approve)

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decide(self, tx: str, approve: bool) -> dict[str, Any]:
        entry = self.phone.decide(tx, approve)
        if self.receipts.callback_url:
            status = await post_webhook(self.receipts.callback_url, self.webhook_secret, self._payload(entry))
            self.receipts_sent.append({"reference": tx, "status": entry["status"], "callback_status": status})
        return entry

    async def confirm(self, request: web.Request) -> web.Response:
        body = await request.json()
        tx = str(body.get("transaction_id", ""))
        if tx not in self.phone.transactions:
            return web.json_response({"title": "unknown transaction", "status": 404}, status=404)
        entry = await self._decide(tx, bool(body.get("approve", True)))
        return web.json_response({"transaction_id": tx, "status": entry["status"]})

    async def set_auto(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.phone.auto = body.get("approve")
        self.phone.auto_delay_ms = float(body.get("delay_ms", self.phone.auto_delay_ms))
        return web.json_response({"auto": self.phone.auto, "delay_ms": self.phone.auto_delay_ms})

    async def list_transactions(self, request: web.Request) -> web.Response:
        return web.json_response({"transactions": [
            {"transaction_id": e["tx"], "status": e["status"], self.ref_field: e["ref"]}
            for e in self.phone.transactions.values()]})
