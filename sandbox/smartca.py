"""VNPT SmartCA remote-signing simulator (docs/signing.md), signing with the test PKI's remote key.

    POST /smartca/sca/sp769/v1/credentials/get_certificate
    POST /smartca/sca/sp769/v1/signatures/sign                 (de-duplicates transaction_id)
    POST /smartca/sca/sp769/v1/signatures/sign/{tran_code}/status
Control:
    POST /smartca/_sandbox/confirm {transaction_id, approve}   the official answers on the phone
    POST /smartca/_sandbox/auto {approve: true|false|null, delay_ms}   answer every request by itself
    GET  /smartca/_sandbox/transactions
    POST /smartca/_sandbox/receipts {callback_url}             where the signed webhook goes (the function's
                                                               /webhooks/smartca); unset: poll only
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from sandbox.base import Handler
from sandbox.signing_pki import RemoteSignerSimulator, SandboxPki

SP_ID, SP_PASSWORD = "sandbox-sp", "sandbox-sp-password"


def _reply(code: int, message: str, data: Any = None) -> web.Response:
    return web.Response(body=orjson.dumps({"status_code": code, "message": message, "data": data}),
                        content_type="application/json")


class SmartCaSimulator(RemoteSignerSimulator):
    name = "smartca"
    webhook_secret = "sandbox-smartca-webhook"
    ref_field = "tran_code"

    def __init__(self, pki: SandboxPki | None = None, **kw: Any):
        super().__init__(pki, **kw)
        self._codes = itertools.count(1)

    def routes(self) -> list[tuple[str, str, Handler]]:
        base = "/sca/sp769/v1"
        return [("POST", f"{base}/credentials/get_certificate", self.get_certificate),
                ("POST", f"{base}/signatures/sign", self.sign),
                ("POST", f"{base}/signatures/sign/{{tran_code}}/status", self.status),
                *self.control_routes()]

    async def _body(self, request: web.Request) -> dict[str, Any] | None:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict) or body.get("sp_id") != SP_ID or body.get("sp_password") != SP_PASSWORD:
            return None
        return body

    async def get_certificate(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None:
            return _reply(401, "SP_CREDENTIAL_INVALID")
        self.log({"op": "get_certificate"})
        der = lambda name: base64.b64encode(self.pki.cert(name).public_bytes(serialization.Encoding.DER)).decode()  # noqa: E731
        cert = self.pki.cert("remote-official")
        return _reply(200, "success", {"user_certificates": [{
            "cert_id": f"cert-{cert.serial_number}", "serial_number": format(cert.serial_number, "x"),
            "cert_data": der("remote-official"), "chain_data": {"ca_cert": der("ca"), "root_cert": der("root")}}]})

    async def sign(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None:
            return _reply(401, "SP_CREDENTIAL_INVALID")
        tx = str(body.get("transaction_id") or "")
        self.receive(tx or None, {"op": "sign"})
        files = body.get("sign_files") or []
        try:
            digest = bytes.fromhex(files[0]["data_to_be_signed"])
        except (IndexError, KeyError, ValueError, TypeError):
            return _reply(400, "BAD_REQUEST: sign_files[0].data_to_be_signed must be a hex SHA-256")
        if not tx or len(digest) != 32:
            return _reply(400, "BAD_REQUEST")
        entry, duplicate = self.phone.ask(tx, digest, str(body.get("user_id")), f"tc-{next(self._codes):06d}")
        if not duplicate:
            self.accept(tx, {"tran_code": entry["ref"]})
            self._maybe_auto(tx)
        return _reply(200, "sig_wait_for_user_confirm", {"transaction_id": tx, "tran_code": entry["ref"]})

    async def status(self, request: web.Request) -> web.Response:
        code = request.match_info["tran_code"]
        entry = next((e for e in self.phone.transactions.values() if e["ref"] == code), None)
        self.log({"op": "status", "tran_code": code})
        if entry is None:
            return _reply(404, "transaction not found")
        entry = self.phone.current(entry["tx"]) or entry
        return _reply(200, "success", self._payload(entry))

    def _payload(self, entry: dict[str, Any]) -> dict[str, Any]:
        files = [{"doc_id": entry["tx"], "signature_value": base64.b64encode(entry["signature"]).decode()}] \
            if entry["signature"] else []
        return {"transaction_id": entry["tx"], "tran_code": entry["ref"], "status": entry["status"],
                "signatures": files, "signed_files": files}
