"""Viettel MySign remote-signing simulator (docs/signing.md), signing with the test PKI's remote key.

    POST /mysign/vtss/service/ras/v1/login        {client_id, client_secret, user_id, profile_id} -> access_token
    POST /mysign/vtss/service/certificates/info   (Bearer) -> [{credential_id, cert: {certificates: [...]}}]
    POST /mysign/vtss/service/signHash            (Bearer) async:1 -> {transactionId} (de-duplicates document_id)
    POST /mysign/vtss/service/requests/status     {transactionId} -> {status: "0"|"1"|"2"|"3", signatures}
Control: POST /mysign/_sandbox/confirm {transaction_id, approve} (our transaction id = document_id),
         POST /mysign/_sandbox/auto {approve, delay_ms}, GET /mysign/_sandbox/transactions,
         POST /mysign/_sandbox/receipts {callback_url}.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from sandbox.base import Handler
from sandbox.signing_pki import RemoteSignerSimulator, SandboxPki

CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-client-secret"
_STATUS = {"pending": "0", "signed": "1", "rejected": "2", "expired": "3"}


class MySignSimulator(RemoteSignerSimulator):
    name = "mysign"
    webhook_secret = "sandbox-mysign-webhook"
    ref_field = "ref"

    def __init__(self, pki: SandboxPki | None = None, **kw: Any):
        super().__init__(pki, **kw)
        self.tokens: dict[str, str] = {}
        self._ids = itertools.count(1)

    def routes(self) -> list[tuple[str, str, Handler]]:
        base = "/vtss/service"
        return [("POST", f"{base}/ras/v1/login", self.login), ("POST", f"{base}/certificates/info", self.info),
                ("POST", f"{base}/signHash", self.sign_hash), ("POST", f"{base}/requests/status", self.status),
                *self.control_routes()]

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
