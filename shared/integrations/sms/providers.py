"""The SMS gateways: every module of this package that declares `PROVIDER` (viettel.py, vnpt.py, mobifone.py).
Prices, rates and breaker policies are in providers.yaml; carriers and prefixes in carriers.yaml."""

from __future__ import annotations

from shared.integrations.registry import Registry

REGISTRY = Registry.discover("sms", "shared.integrations.sms")
