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
    prices: dict[str, dict[str, dict[str, dict[str, float]]]]  # provider -> carrier -> category -> encoding

    def price(self, provider: str, encoding: str, carrier: str = "default", category: str = "default") -> float:
        """VND per segment; `default` stands for any carrier or category the table does not name."""
        table = self.prices.get(provider, {})
        by_category = table.get(carrier) or table.get("default") or {}
        by_encoding = by_category.get(category) or by_category.get("default") or {}
        return by_encoding.get(encoding, 0.0)

    def ranked(self, providers: list[str], encoding: str, carrier: str, category: str, segments: int) -> list[str]:
        """Cheapest first for this message; the catalogue order breaks ties."""
        order = {p: i for i, p in enumerate(self.order)}
        return sorted(providers, key=lambda p: (segments * self.price(p, encoding, carrier, category), order[p]))


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
    prices: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for name, spec in (data.get("providers") or {}).items():
        spec = spec or {}
        if "price_vnd" in spec:  # one price for every carrier and category
            prices[name] = {"default": {"default": {k: float(v) for k, v in spec["price_vnd"].items()}}}
        else:
            prices[name] = {carrier: {cat: {k: float(v) for k, v in enc.items()} for cat, enc in cats.items()}
                            for carrier, cats in (spec.get("prices") or {}).items()}
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
