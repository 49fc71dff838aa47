"""VNPT / VinaPhone SMS brandname over its JSON `RQST`/`RPLY` API (docs/providers.md). Reference: `REQID`.

The error-code table is not public: `ERROR` "0" (and the one sample seen, "31" with ERROR_DESC
"success") mean accepted; the codes below are the sandbox's assumption, documented in sandbox/README.md.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.integrations import transport
from shared.integrations.registry import ProviderSpec, WebhookSpec, sandbox_url
from shared.integrations.sms import FailureReason, ProviderReceipt, SmsMessage
from shared.integrations.sms.receipts import Receipt, receipt_id
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable


class VnptSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_SMS_VNPT_", extra="ignore")

    url: str = Field(default_factory=lambda: sandbox_url("/vnpt/api"))
    user: str = "sandbox"
    password: SecretStr = SecretStr("sandbox")
    username: str = "dvc"
    label_id: str = "1"
    contract_id: str = "1"
    contract_type_id: str = "1"
    template_id: str = "1"
    agent_id: str = "1"
    timeout_s: float = 3.0
    dlr_secret: SecretStr | None = Field(None, description="HMAC secret of the receipt webhook; required "
                                         "outside dev/test (the function refuses to start without it)")
    dlr_allow_ips: str = Field("", description="Comma-separated CIDRs allowed to post receipts unsigned")


PROVIDER = ProviderSpec("sms", "vnpt", client="shared.integrations.sms.vnpt:VnptSms",
                        settings="shared.integrations.sms.vnpt:VnptSettings", simulator="sandbox.vnpt:VnptSimulator",
                        webhook=WebhookSpec("/dlr/vnpt", "shared.integrations.sms.vnpt:parse_receipt",
                                            secret_field="dlr_secret", allow_ips_field="dlr_allow_ips",
                                            sandbox_secret="sandbox-dlr-secret"),
                        receipts="push")


SUCCESS = frozenset(("0", "31"))
REJECTIONS = {"2": FailureReason.invalid_recipient, "7": FailureReason.content_rejected,
              "9": FailureReason.content_rejected}
UNAVAILABLE = frozenset(("1", "3", "99"))  # auth, brandname/contract, system busy: nothing sent


class VnptSms:
    name = "vnpt"
    max_chars = 612

    def __init__(self, settings: VnptSettings | None = None):
        self.settings = settings or VnptSettings()

    def request_body(self, message: SmsMessage) -> bytes:
        s = self.settings
        return orjson.dumps({"RQST": {
            "name": "send_sms_list", "REQID": message.reference, "LABELID": s.label_id,
            "CONTRACTTYPEID": s.contract_type_id, "CONTRACTID": s.contract_id, "TEMPLATEID": s.template_id,
            "PARAMS": [{"NUM": "1", "CONTENT": message.text}], "SCHEDULETIME": "", "MOBILELIST": message.to,
            "ISTELCOSUB": "0", "AGENTID": s.agent_id, "APIUSER": s.user,
            "APIPASS": s.password.get_secret_value(), "USERNAME": s.username,
            "DATACODING": "8" if message.encoding == "ucs2" else "0",
        }})

    async def send(self, message: SmsMessage) -> ProviderReceipt:
        status, payload = await transport.request(
            self.name, "POST", self.settings.url, body=self.request_body(message),
            headers={"content-type": "application/json"}, timeout_s=self.settings.timeout_s)
        if status >= 500:
            raise ProviderAmbiguous(self.name, f"HTTP {status}")
        try:
            reply = orjson.loads(payload)["RPLY"]
            code, desc = str(reply["ERROR"]), str(reply.get("ERROR_DESC", ""))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ProviderAmbiguous(self.name, f"unreadable reply (HTTP {status})") from exc
        if code in SUCCESS:
            return ProviderReceipt(self.name, message.reference)
        if code in UNAVAILABLE:
            raise ProviderUnavailable(self.name, f"ERROR={code}: {desc}")
        raise ProviderRejected(self.name, REJECTIONS.get(code, FailureReason.provider_rejected),
                               f"ERROR={code}: {desc}")

    async def status(self, message: SmsMessage) -> ProviderReceipt | None:
        raise ProviderAmbiguous(self.name, "no status query known; re-send with the same REQID")


# -- delivery receipts (push; assumed shape, sandbox/README.md) --------------------------------------------
RECEIPT_STATUS = {"DELIVRD": "delivered", "UNDELIV": "failed", "REJECTD": "failed", "EXPIRED": "expired"}


def parse_receipt(payload: dict[str, Any]) -> Receipt:
    """VNPT push: {"REQID", "MOBILE", "STATUS", "TELCO", "DONE_TIME"}."""
    return Receipt("vnpt", receipt_id(payload["REQID"]), RECEIPT_STATUS.get(str(payload.get("STATUS")), "unknown"),  # type: ignore[arg-type]
                   str(payload.get("TELCO") or ""), str(payload.get("DONE_TIME") or ""))
