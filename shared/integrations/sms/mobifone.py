"""MobiFone SMS brandname. No public spec exists: a plain REST/JSON shape, assumed and documented in
sandbox/README.md. Reference: `client_ref`; it has a status query by reference."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.integrations import transport
from shared.integrations.registry import ProviderSpec, WebhookSpec, sandbox_url
from shared.integrations.sms import FailureReason, ProviderReceipt, SmsMessage
from shared.integrations.sms.receipts import Receipt, receipt_id
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable


class MobifoneSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_SMS_MOBIFONE_", extra="ignore")

    url: str = Field(default_factory=lambda: sandbox_url("/mobifone"))
    token: SecretStr = SecretStr("sandbox-token")
    timeout_s: float = 3.0
    dlr_secret: SecretStr | None = Field(None, description="HMAC secret of the receipt webhook; required "
                                         "outside dev/test (the function refuses to start without it)")
    dlr_allow_ips: str = Field("", description="Comma-separated CIDRs allowed to post receipts unsigned")


PROVIDER = ProviderSpec("sms", "mobifone", client="shared.integrations.sms.mobifone:MobifoneSms",
                        settings="shared.integrations.sms.mobifone:MobifoneSettings",
                        simulator="sandbox.mobifone:MobifoneSimulator",
                        webhook=WebhookSpec("/dlr/mobifone", "shared.integrations.sms.mobifone:parse_receipt",
                                            secret_field="dlr_secret", allow_ips_field="dlr_allow_ips",
                                            sandbox_secret="sandbox-dlr-secret"),
                        receipts="push")


REJECTIONS = {"11": FailureReason.invalid_recipient, "12": FailureReason.content_rejected,
              "13": FailureReason.content_too_long}


class MobifoneSms:
    name = "mobifone"
    max_chars = 612

    def __init__(self, settings: MobifoneSettings | None = None):
        self.settings = settings or MobifoneSettings()

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.settings.token.get_secret_value()}",
                "content-type": "application/json"}

    async def send(self, message: SmsMessage) -> ProviderReceipt:
        body = orjson.dumps({"client_ref": message.reference, "brandname": message.brandname,
                             "to": message.to, "text": message.text, "encoding": message.encoding})
        status, payload = await transport.request(
            self.name, "POST", self.settings.url + "/api/v1/messages", body=body, headers=self._headers(),
            timeout_s=self.settings.timeout_s)
        reply = self._json(status, payload)
        if status in (200, 201) and reply.get("code") == "00":
            return ProviderReceipt(self.name, str(reply["message_id"]))
        code = str(reply.get("code"))
        if status in (401, 403):
            raise ProviderUnavailable(self.name, f"HTTP {status}: {reply.get('message')}")
        raise ProviderRejected(self.name, REJECTIONS.get(code, FailureReason.provider_rejected),
                               f"code={code}: {reply.get('message')}")

    async def status(self, message: SmsMessage) -> ProviderReceipt | None:
        status, payload = await transport.request(
            self.name, "GET", f"{self.settings.url}/api/v1/messages/{quote(message.reference)}",
            headers=self._headers(), timeout_s=self.settings.timeout_s)
        if status == 404:
            return None
        reply = self._json(status, payload)
        if status == 200 and "message_id" in reply:
            return ProviderReceipt(self.name, str(reply["message_id"]))
        raise ProviderAmbiguous(self.name, f"status query answered HTTP {status}")

    def _json(self, status: int, payload: bytes) -> dict:
        if status >= 500:
            raise ProviderAmbiguous(self.name, f"HTTP {status}")
        try:
            reply = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ProviderAmbiguous(self.name, f"unreadable reply (HTTP {status})") from exc
        if not isinstance(reply, dict):
            raise ProviderAmbiguous(self.name, f"unreadable reply (HTTP {status})")
        return reply


# -- delivery receipts (push; assumed shape, sandbox/README.md) --------------------------------------------
RECEIPT_STATUS = {"delivered": "delivered", "failed": "failed", "expired": "expired"}


def parse_receipt(payload: dict[str, Any]) -> Receipt:
    """MobiFone push: {"message_id", "status", "carrier", "part", "parts", "at"} (per part)."""
    return Receipt("mobifone", receipt_id(payload["message_id"]),
                   RECEIPT_STATUS.get(str(payload.get("status")), "unknown"),  # type: ignore[arg-type]
                   str(payload.get("carrier") or ""), str(payload.get("at") or ""), int(payload.get("part", 1)),
                   int(payload.get("parts", 0)))
