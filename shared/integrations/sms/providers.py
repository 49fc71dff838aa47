"""The SMS gateways: what each brings (client, settings, simulator, sandbox URL, receipt webhook).
Prices, rates and breaker policies are in providers.yaml; carriers and prefixes in carriers.yaml."""

from __future__ import annotations

from shared.integrations.registry import ProviderSpec, Registry, WebhookSpec

_RECEIPT = dict(scheme="hmac-sha256", secret_field="dlr_secret", allow_ips_field="dlr_allow_ips")

REGISTRY = Registry("sms", [
    ProviderSpec("sms", "viettel", client="shared.integrations.sms.viettel:ViettelSms",
                 settings="shared.integrations.sms.settings:ViettelSettings",
                 simulator="sandbox.viettel:ViettelSimulator",
                 url_env={"DVCI_SMS_VIETTEL_URL": "/viettel/bulkapi"}, receipts="pull"),
    ProviderSpec("sms", "vnpt", client="shared.integrations.sms.vnpt:VnptSms",
                 settings="shared.integrations.sms.settings:VnptSettings",
                 simulator="sandbox.vnpt:VnptSimulator", url_env={"DVCI_SMS_VNPT_URL": "/vnpt/api"},
                 webhook=WebhookSpec("/dlr/vnpt", "shared.integrations.sms.vnpt:parse_receipt", **_RECEIPT),
                 receipts="push"),
    ProviderSpec("sms", "mobifone", client="shared.integrations.sms.mobifone:MobifoneSms",
                 settings="shared.integrations.sms.settings:MobifoneSettings",
                 simulator="sandbox.mobifone:MobifoneSimulator", url_env={"DVCI_SMS_MOBIFONE_URL": "/mobifone"},
                 webhook=WebhookSpec("/dlr/mobifone", "shared.integrations.sms.mobifone:parse_receipt", **_RECEIPT),
                 receipts="push"),
])
