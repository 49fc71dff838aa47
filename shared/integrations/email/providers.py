"""The e-mail providers: every module of this package that declares `PROVIDER` (smtp.py: any relay, the
sandbox is a real SMTP server; ses.py: Amazon SES, moto locally). The failover order is a setting."""

from __future__ import annotations

from shared.integrations.registry import Registry

REGISTRY = Registry.discover("email", "shared.integrations.email")
