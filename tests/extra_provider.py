"""A fourth SMS gateway that exists only in the tests ("kite"): its client, its settings, its simulator and
its registry entry, joined through `DVCI_SMS_EXTRA_PROVIDERS=tests.extra_provider:SPEC` — no project file
names it. Shape: POST /send {"ref", "to", "text"} -> {"id"}; GET /status/<ref>; signed receipt pushes."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandbox.base import Handler, Simulator
from shared.integrations import transport
from shared.integrations.registry import ProviderSpec, WebhookSpec
from shared.integrations.sms import FailureReason, ProviderReceipt, SmsMessage
from shared.integrations.sms.receipts import Receipt
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected


class KiteSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_SMS_KITE_", extra="ignore")

    url: str = "http://127.0.0.1:1/kite"
    dlr_secret: SecretStr = SecretStr("kite-test-secret")
    dlr_allow_ips: str = ""


class KiteSms:
    name = "kite"
    max_chars = 612

    def __init__(self) -> None:
        self.settings = KiteSettings()

    async def send(self, message: SmsMessage) -> ProviderReceipt:
        body = orjson.dumps({"ref": message.reference, "to": message.to, "text": message.text})
        status, payload = await transport.request(self.name, "POST", self.settings.url + "/send", body=body,
                                                  headers={"content-type": "application/json"}, timeout_s=0.5)
        if status == 200:
            return ProviderReceipt(self.name, str(orjson.loads(payload)["id"]))
        if status == 400:
            raise ProviderRejected(self.name, FailureReason.provider_rejected, payload.decode()[:100])
        raise ProviderAmbiguous(self.name, f"HTTP {status}")

    async def status(self, message: SmsMessage) -> ProviderReceipt | None:
        status, payload = await transport.request(self.name, "GET", f"{self.settings.url}/status/{message.reference}",
                                                  timeout_s=0.5)
        if status == 404:
            return None
        return ProviderReceipt(self.name, str(orjson.loads(payload)["id"]))


def parse_receipt(payload: dict[str, Any]) -> Receipt:
    return Receipt("kite", str(payload["id"]), "delivered" if payload["ok"] else "failed")  # type: ignore[arg-type]


class KiteSimulator(Simulator):
    name = "kite"

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/send", self.send), ("GET", "/status/{ref}", self.status)]

    async def send(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.receive(body["ref"], {"to": body["to"]})
        msg, _ = self.accept(body["ref"], {"to": body["to"], "content": body["text"]})
        return web.json_response({"id": msg["message_id"]})

    async def status(self, request: web.Request) -> web.Response:
        msg = self.messages.get(request.match_info["ref"])
        return web.json_response({"id": msg["message_id"]}) if msg else web.json_response({}, status=404)

    def receipt_payload(self, reference, message, status, carrier, part, parts):  # type: ignore[no-untyped-def]
        return {"id": message["message_id"], "ok": status == "delivered"}


SPEC = ProviderSpec("sms", "kite", client="tests.extra_provider:KiteSms", settings="tests.extra_provider:KiteSettings",
                    simulator="tests.extra_provider:KiteSimulator", url_env={"DVCI_SMS_KITE_URL": "/kite"},
                    webhook=WebhookSpec("/dlr/kite", "tests.extra_provider:parse_receipt", secret_field="dlr_secret",
                                        allow_ips_field="dlr_allow_ips"),
                    receipts="push")
