"""Reliability policies: breaker, rate limit, idempotency — plain data, loaded from catalogues."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a provider's breaker opens and how long it stays open (pybreaker's model, shared in Redis)."""

    mode: Literal["consecutive", "rate"] = "consecutive"
    failure_threshold: int = 5
    window_ms: int = 10_000
    min_calls: int = 20
    failure_rate_pct: int = 50
    cooldown_ms: int = 30_000
    probe_lease_ms: int = 5_000

    def lua(self) -> dict[str, Any]:
        return {"mode": self.mode, "th": self.failure_threshold, "win": self.window_ms, "min": self.min_calls,
                "pct": self.failure_rate_pct}


@dataclass(frozen=True, slots=True)
class RateLimit:
    """GCRA: `rate` calls per `period_s`, with `burst` calls allowed back to back."""

    rate: float
    period_s: float = 1.0
    burst: int = 1

    @property
    def interval_ms(self) -> float:
        return self.period_s * 1000.0 / self.rate

    @property
    def tolerance_ms(self) -> float:
        return self.interval_ms * (self.burst - 1)

    def lua(self) -> dict[str, float]:
        return {"i": self.interval_ms, "t": self.tolerance_ms}


@dataclass(frozen=True, slots=True)
class ProviderPolicy:
    name: str
    rate: RateLimit | None = None
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)


@dataclass(frozen=True, slots=True)
class IdempotencyConfig:
    lease_ms: int = 15_000
    completed_ttl_ms: int = 7 * 24 * 3600 * 1000
    in_progress_ttl_ms: int = 24 * 3600 * 1000
    max_rate_wait_ms: int = 1_000
    max_ambiguous_tries: int = 4


def breaker_from(obj: dict[str, Any] | None, defaults: BreakerPolicy | None = None) -> BreakerPolicy:
    base = defaults or BreakerPolicy()
    if not obj:
        return base
    return BreakerPolicy(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **obj})
