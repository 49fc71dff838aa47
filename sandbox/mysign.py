"""Viettel MySign remote-signing simulator (providers.md §4.2), signing with the test PKI's remote key.

    POST /mysign/vtss/service/ras/v1/login        {client_id, client_secret, user_id, profile_id} -> access_token
    POST /mysign/vtss/service/certificates/info   (Bearer) -> [{credential_id, cert: {certificates: [...]}}]
    POST /mysign/vtss/service/signHash            (Bearer) async:1 -> {transactionId} (de-duplicates document_id)
    POST /mysign/vtss/service/requests/status     {transactionId} -> {status: "0"|"1"|"2"|"3", signatures}
Control: POST /mysign/_sandbox/confirm {transaction_id, approve} (our transaction id = document_id),
         POST /mysign/_sandbox/auto {approve, delay_ms}, GET /mysign/_sandbox/transactions,
         POST /mysign/_sandbox/receipts {callback_url}.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import secrets
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from sandbox.base import Handler, Simulator
from sandbox.signing_pki import OfficialPhone, SandboxPki, post_webhook

CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-client-secret"
_STATUS = {"pending": "0", "signed": "1", "rejected": "2", "expired": "3"}


class MySignSimulator(Simulator):
    name = "mysign"
    webhook_secret = "sandbox-mysign-webhook"

    def __init__(self, pki: SandboxPki | None = None, **kw: Any):
        super().__init__(**kw)
        self.pki = pki or SandboxPki()
        self.phone = OfficialPhone(self.pki)
        self.tokens: dict[str, str] = {}
        self._ids = itertools.count(1)

    def routes(self) -> list[tuple[str, str, Handler]]:
        base = "/vtss/service"
        return [("POST", f"{base}/ras/v1/login", self.login), ("POST", f"{base}/certificates/info", self.info),
                ("POST", f"{base}/signHash", self.sign_hash), ("POST", f"{base}/requests/status", self.status),
                ("POST", "/_sandbox/confirm", self.confirm), ("POST", "/_sandbox/auto", self.set_auto),
                ("GET", "/_sandbox/transactions", self.list_transactions)]

    def _bearer(self, request: web.Request) -> str | None:
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        return self.tokens.get(token)

    async def login(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
        token = secrets.token_hex(16)
        self.tokens[token] = str(body.get("user_id"))
        self.log({"op": "login"})
        return web.json_response({"access_token": token, "refresh_token": secrets.token_hex(8),
                                  "token_type": "Bearer", "expires_in": 3600})

    async def info(self, request: web.Request) -> web.Response:
        if self._bearer(request) is None:
            return web.json_response({"error": "unauthorized"}, status=401)
        self.log({"op": "certificates/info"})
        cert = self.pki.cert("remote-official")
        chain = [base64.b64encode(self.pki.cert(n).public_bytes(serialization.Encoding.DER)).decode()
                 for n in ("remote-official", "ca", "root")]
        return web.json_response([{
            "credential_id": f"cred-{cert.serial_number}", "description": "sandbox official",
            "key": {"status": "enabled", "algo": ["1.2.840.113549.1.1.1"], "len": 2048},
            "cert": {"status": "valid", "certificates": chain, "issuerDN": cert.issuer.rfc4514_string(),
                     "serialNumber": format(cert.serial_number, "x"), "subjectDN": cert.subject.rfc4514_string(),
                     "validFrom": cert.not_valid_before_utc.isoformat(),
                     "validTo": cert.not_valid_after_utc.isoformat()},
            "authMode": "explicit"}])

    async def sign_hash(self, request: web.Request) -> web.Response:
        if self._bearer(request) is None:
            return web.json_response({"error": "unauthorized"}, status=401)
        body = orjson.loads(await request.read())
        try:
            tx = str(body["documents"][0]["document_id"])
            digest = base64.b64decode(body["hash"][0])
        except (KeyError, IndexError, TypeError, ValueError):
            self.receive(None, {"op": "signHash", "error": "malformed"})
            return web.json_response({"error": "bad request"}, status=400)
        self.receive(tx, {"op": "signHash"})
        if len(digest) != 32:
            return web.json_response({"error": "hash must be SHA-256"}, status=400)
        entry, duplicate = self.phone.ask(tx, digest, self._bearer(request) or "", f"vt-{next(self._ids):08d}")
        if not duplicate:
            self.accept(tx, {"transactionId": entry["ref"]})
            self._maybe_auto(tx)
        return web.json_response({"transactionId": entry["ref"]})

    def _payload(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {"transactionId": entry["ref"], "document_id": entry["tx"], "status": _STATUS[entry["status"]],
                "signatures": [base64.b64encode(entry["signature"]).decode()] if entry["signature"] else [],
                "message": entry["status"]}

    async def status(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        ref = str(body.get("transactionId", ""))
        self.log({"op": "status", "transactionId": ref})
        entry = next((e for e in self.phone.transactions.values() if e["ref"] == ref), None)
        if entry is None:
            return web.json_response({"message": "transaction not found"}, status=404)
        return web.json_response(self._payload(self.phone.current(entry["tx"]) or entry))

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
            {"transaction_id": e["tx"], "status": e["status"], "ref": e["ref"]}
            for e in self.phone.transactions.values()]})
