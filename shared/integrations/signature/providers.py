"""The signing providers: the agency's PKCS#11 token (`hsm`) and the remote signing services of the
officials (`smartca`, `mysign`). The timestamp authority and the OCSP responder of the test PKI are no
signers: their simulators are listed in SUPPORT (served by `dvci sandbox` / `dvci dev`); every URL defaults
to the sandbox's (DVCI_SANDBOX_URL).

Signing never fails over between these: a different key is a different legal act.
"""

from __future__ import annotations

from shared.integrations.registry import ProviderSpec, Registry, WebhookSpec

_SETTINGS = "shared.integrations.signature.settings:SigningSettings"

REGISTRY = Registry("signing", [
    ProviderSpec("signing", "hsm", client="shared.integrations.signature.pkcs11:TokenPool", settings=_SETTINGS),
    ProviderSpec("signing", "smartca", client="shared.integrations.signature.smartca:SmartCa", settings=_SETTINGS,
                 simulator="sandbox.smartca:SmartCaSimulator",
                 webhook=WebhookSpec("/webhooks/smartca", "shared.integrations.signature.smartca:SmartCa",
                                     secret_field="smartca_webhook_secret", allow_ips_field="smartca_allow_ips",
                                     sandbox_secret="sandbox-smartca-webhook"),
                 receipts="push"),
    ProviderSpec("signing", "mysign", client="shared.integrations.signature.mysign:MySign", settings=_SETTINGS,
                 simulator="sandbox.mysign:MySignSimulator",
                 webhook=WebhookSpec("/webhooks/mysign", "shared.integrations.signature.mysign:MySign",
                                     secret_field="mysign_webhook_secret", allow_ips_field="mysign_allow_ips",
                                     sandbox_secret="sandbox-mysign-webhook"),
                 receipts="push"),
])
SUPPORT = ["sandbox.tsa:TsaSimulator", "sandbox.ocsp:OcspSimulator"]

SIGNERS = ("hsm", "smartca", "mysign")
