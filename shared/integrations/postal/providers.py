"""The postal carriers: client, settings, sandbox simulator, sandbox URL and tracking webhook of each."""

from __future__ import annotations

from shared.integrations.registry import ProviderSpec, Registry, WebhookSpec

REGISTRY = Registry("postal", [
    ProviderSpec("postal", "vnpost", client="shared.integrations.postal.vnpost:VnpostCarrier",
                 settings="shared.integrations.postal.settings:VnpostSettings",
                 simulator="sandbox.vnpost:VnpostSimulator", url_env={"DVCI_POSTAL_VNPOST_URL": "/vnpost"},
                 receipts="pull"),
    ProviderSpec("postal", "viettelpost", client="shared.integrations.postal.viettelpost:ViettelpostCarrier",
                 settings="shared.integrations.postal.settings:ViettelpostSettings",
                 simulator="sandbox.viettelpost:ViettelpostSimulator",
                 url_env={"DVCI_POSTAL_VIETTELPOST_URL": "/viettelpost/v2"},
                 webhook=WebhookSpec("/webhooks/viettelpost", "shared.integrations.postal.viettelpost:parse_webhook",
                                     scheme="token", secret_field="webhook_secret",
                                     allow_ips_field="webhook_allow_ips", header="authorization",
                                     sandbox_secret="sandbox-vtp-webhook-secret"),
                 receipts="push"),
])
