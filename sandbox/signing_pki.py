"""The test PKI as the signing sandboxes see it (loaded lazily from DVCI_SIGN_PKI_DIR, default .dvci/pki)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa


def pki_dir() -> Path:
    return Path(os.environ.get("DVCI_SIGN_PKI_DIR", ".dvci/pki"))


class SandboxPki:
    """Certificates and keys of the test PKI (dev only: the sandboxes sign CRLs, OCSP and TSA replies)."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder or pki_dir()
        self._cache: dict[str, Any] = {}  # parsing an RSA key costs ~40 ms: once per process

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
