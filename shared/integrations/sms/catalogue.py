"""The SMS catalogue (providers.yaml): provider order, rate limits, breaker and recipient policies."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import yaml

from shared.integrations.sms.settings import SmsSettings
from shared.reliability.policy import BreakerPolicy, ProviderPolicy, RateLimit, breaker_from


@dataclass(frozen=True, slots=True)
class Catalogue:
    order: list[str]
    policies: dict[str, ProviderPolicy]
    recipient_limits: dict[str, RateLimit]
    prices: dict[str, dict[str, float]]  # provider -> encoding -> VND per segment

    def price(self, provider: str, encoding: str) -> float:
        return self.prices.get(provider, {}).get(encoding, 0.0)


def parse(data: dict, order_override: str | None = None) -> Catalogue:
    defaults = breaker_from(data.get("breaker_defaults"), BreakerPolicy())
    policies = {}
    for name, spec in (data.get("providers") or {}).items():
        spec = spec or {}
        rate = RateLimit(float(spec["tps"]), 1.0, int(spec.get("burst", 1))) if spec.get("tps") else None
        policies[name] = ProviderPolicy(name, rate, breaker_from(spec.get("breaker"), defaults))
    order = [p.strip() for p in order_override.split(",")] if order_override else list(data["order"])
    unknown = [p for p in order if p not in policies]
    if unknown:
        raise ValueError(f"SMS order names providers missing from the catalogue: {', '.join(unknown)}")
    limits = {cat: RateLimit(float(v["rate"]), float(v.get("period_s", 3600)), int(v.get("burst", v["rate"])))
              for cat, v in (data.get("recipient_limits") or {}).items()}
    prices = {name: {enc: float(v) for enc, v in (spec or {}).get("price_vnd", {}).items()}
              for name, spec in (data.get("providers") or {}).items()}
    return Catalogue(order, policies, limits, prices)


@lru_cache(maxsize=1)
def load() -> Catalogue:
    """The catalogue of this process (read once)."""
    settings = SmsSettings()
    if settings.policy_file:
        text = Path(settings.policy_file).read_text()
    else:
        text = files("shared.integrations.sms").joinpath("providers.yaml").read_text()
    return parse(yaml.safe_load(text), settings.order)
