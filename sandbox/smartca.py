"""VNPT SmartCA remote-signing simulator (providers.md §4.1), signing with the test PKI's remote key.

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

import asyncio
import base64
import itertools
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from sandbox.base import Handler, Simulator
from sandbox.signing_pki import OfficialPhone, SandboxPki, post_webhook

SP_ID, SP_PASSWORD = "sandbox-sp", "sandbox-sp-password"


def _reply(code: int, message: str, data: Any = None) -> web.Response:
    return web.Response(body=orjson.dumps({"status_code": code, "message": message, "data": data}),
                        content_type="application/json")


class SmartCaSimulator(Simulator):
    name = "smartca"
    webhook_secret = "sandbox-smartca-webhook"

    def __init__(self, pki: SandboxPki | None = None, **kw: Any):
        super().__init__(**kw)
        self.pki = pki or SandboxPki()
        self.phone = OfficialPhone(self.pki)
        self._codes = itertools.count(1)

    def routes(self) -> list[tuple[str, str, Handler]]:
        base = "/sca/sp769/v1"
        return [("POST", f"{base}/credentials/get_certificate", self.get_certificate),
                ("POST", f"{base}/signatures/sign", self.sign),
                ("POST", f"{base}/signatures/sign/{{tran_code}}/status", self.status),
                ("POST", "/_sandbox/confirm", self.confirm), ("POST", "/_sandbox/auto", self.set_auto),
                ("GET", "/_sandbox/transactions", self.list_transactions)]

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
            {"transaction_id": e["tx"], "status": e["status"], "tran_code": e["ref"]}
            for e in self.phone.transactions.values()]})
