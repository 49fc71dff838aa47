"""The signing providers: the agency's PKCS#11 token (`hsm`) and the remote signing services of the
officials (`smartca`, `mysign`), plus the sandboxes the test PKI needs (`tsa`, `ocsp`: not signers, but
listed so `dvci sandbox` / `dvci dev` serve them and point DVCI_SIGN_TSA_URL at them).

Signing never fails over between these: a different key is a different legal act.
"""

from __future__ import annotations

from shared.integrations.registry import ProviderSpec, Registry, WebhookSpec

_SETTINGS = "shared.integrations.signature.settings:SigningSettings"

REGISTRY = Registry("signing", [
    ProviderSpec("signing", "hsm", client="shared.integrations.signature.pkcs11:TokenPool", settings=_SETTINGS),
    ProviderSpec("signing", "smartca", client="shared.integrations.signature.smartca:SmartCa", settings=_SETTINGS,
                 simulator="sandbox.smartca:SmartCaSimulator",
                 url_env={"DVCI_SIGN_SMARTCA_URL": "/smartca/sca/sp769"},
                 webhook=WebhookSpec("/webhooks/smartca", "shared.integrations.signature.smartca:SmartCa",
                                     secret_field="smartca_webhook_secret", allow_ips_field="smartca_allow_ips"),
                 receipts="push"),
    ProviderSpec("signing", "mysign", client="shared.integrations.signature.mysign:MySign", settings=_SETTINGS,
                 simulator="sandbox.mysign:MySignSimulator",
                 url_env={"DVCI_SIGN_MYSIGN_URL": "/mysign/vtss/service"},
                 webhook=WebhookSpec("/webhooks/mysign", "shared.integrations.signature.mysign:MySign",
                                     secret_field="mysign_webhook_secret", allow_ips_field="mysign_allow_ips"),
                 receipts="push"),
    ProviderSpec("signing", "tsa", client="shared.integrations.signature.settings:SigningSettings",
                 settings=_SETTINGS, simulator="sandbox.tsa:TsaSimulator", url_env={"DVCI_SIGN_TSA_URL": "/tsa/"}),
    ProviderSpec("signing", "ocsp", client="shared.integrations.signature.settings:SigningSettings",
                 settings=_SETTINGS, simulator="sandbox.ocsp:OcspSimulator"),
])

SIGNERS = ("hsm", "smartca", "mysign")
