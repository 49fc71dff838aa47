"""The gate in front of each LGSP target (DVCQG, LGSP, the population database), for the drain, the
reconcile and lookups: the shared fleet-wide breaker and contract rate limit of `shared/reliability/gate.py`
(the pipeline's own script and Redis state: `dvci breaker status|open|close` shows and forces `lgsp.<target>`),
with the targets' policy from settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.reliability import gate as core
from shared.reliability.gate import GateClosed
from shared.reliability.policy import BreakerPolicy, ProviderPolicy, RateLimit
from shared.storage.redis import Keys

__all__ = ["Gate", "GateClosed", "GatePolicy"]


@dataclass(frozen=True, slots=True)
class GatePolicy:
    rate: float
    burst: int
    failures: int
    cooldown_ms: int
    probe_ms: int = 10_000

    def provider(self, target: str) -> ProviderPolicy:
        rate = RateLimit(self.rate, 1.0, max(1, self.burst)) if self.rate > 0 else None
        return ProviderPolicy(target, rate, BreakerPolicy(failure_threshold=self.failures,
                                                          cooldown_ms=self.cooldown_ms, probe_lease_ms=self.probe_ms))


class Gate(core.Gate):
    def __init__(self, redis: Any, keys: Keys, target: str, policy: GatePolicy):
        super().__init__(redis, keys, "lgsp", target, policy.provider(target))
        self.target = target
