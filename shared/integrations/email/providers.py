"""The e-mail providers: SMTP (any relay; the sandbox is a real SMTP server) and Amazon SES (moto locally)."""

from __future__ import annotations

from shared.integrations.registry import ProviderSpec, Registry

REGISTRY = Registry("email", [
    ProviderSpec("email", "smtp", client="shared.integrations.email.smtp:SmtpEmail",
                 settings="shared.integrations.email.settings:SmtpSettings", simulator="sandbox.smtp:SmtpSimulator"),
    ProviderSpec("email", "ses", client="shared.integrations.email.ses:SesEmail",
                 settings="shared.integrations.email.settings:SesSettings"),
])
