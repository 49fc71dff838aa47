"""A provider's fleet-wide breaker and rate limit for calls made outside any event — scheduled drains,
reconciliations, lookups, polling — through the same pipeline script (and the same Redis state that
`dvci breaker` shows and forces) as event admission:

    gate = Gate(redis, keys, "<kind>", "<provider>", policy)
    probe = await gate.take(max_wait_ms=500)      # GateClosed when the breaker is open or the slot too far
    try: ...call...; await gate.report(True)
    except ...: await gate.report(False)
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from shared.observability import metrics
from shared.reliability.pipeline import _SCRIPT, transitions_logged
from shared.reliability.policy import ProviderPolicy
from shared.storage.redis import Keys, eval_script

_STATE = "return redis.call('HMGET', KEYS[1], 'state', 'forced')"


class GateClosed(Exception):
    """The provider's breaker is open, or its next rate slot is further than the caller may wait."""

    def __init__(self, provider: str, why: str, retry_in_ms: float):
        super().__init__(f"{provider}: {why}")
        self.provider, self.why, self.retry_in_ms = provider, why, retry_in_ms


class Gate:
    def __init__(self, redis: Any, keys: Keys, kind: str, provider: str, policy: ProviderPolicy):
        """`redis`: the hot-path RespClient or a redis-py asyncio client; the keys are the pipeline's."""
        self.redis, self.kind, self.provider, self.policy = redis, kind, provider, policy
        self.stream = keys.key(kind, "breaker-events")
        self.breaker = keys.key(kind, "breaker", provider)
        self.rate = keys.key(kind, "rate", provider)
        rate = policy.rate.lua() if policy.rate else {"i": 0, "t": 0}
        self._spec = {"name": provider, "k": 2, "cool": policy.breaker.cooldown_ms,
                      "probe": policy.breaker.probe_lease_ms, "ri": rate["i"], "rt": rate["t"]}

    async def take(self, max_wait_ms: float, *, slot_only: bool = False) -> bool:
        """Wait for the rate slot (at most `max_wait_ms`); True when this call is the fleet's half-open probe.
        `slot_only`: a further call of the same unit of work (the breaker was asked for its first call)."""
        spec = orjson.dumps({"providers": [self._spec], "max_wait": max_wait_ms, "slot_only": 1 if slot_only else 0})
        res = await eval_script(self.redis, _SCRIPT, [self.stream, self.breaker, self.rate], ["take", spec])
        status = res[0].decode() if isinstance(res[0], bytes) else str(res[0])
        wait = float(res[1])
        if status != "ok":
            if status == "limited" and metrics.ENABLED:
                metrics.RATE_LIMITED.labels(self.kind, "provider").inc()
            raise GateClosed(self.provider, "rate limited" if status == "limited" else "breaker open", wait)
        if wait > 0:
            await asyncio.sleep(wait / 1000)
        return bool(int(res[2]))

    async def report(self, ok: bool) -> None:
        spec = orjson.dumps({"result": {"name": self.provider, "outcome": "ok" if ok else "fail",
                                        "policy": self.policy.breaker.lua()}})
        res = await eval_script(self.redis, _SCRIPT, [self.stream, self.breaker], ["report", spec])
        transitions_logged(self.kind, {self.provider}, res[1])

    async def state(self) -> str:
        """closed | open | half_open, or forced-open / forced-closed (`dvci breaker open|close`)."""
        res = await eval_script(self.redis, _STATE, [self.breaker], [])
        state, forced = (v.decode() if isinstance(v, bytes) else v for v in res)
        return f"forced-{forced}" if forced else (state or "closed")
