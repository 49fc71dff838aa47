"""The LGSP kind wired from settings: targets, gates, the syncer, the citizen lookup (one per event loop)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shared.integrations.lgsp import SyncTarget
from shared.integrations.lgsp.citizens import CitizenCache, CitizenLookup
from shared.integrations.lgsp.crypto import sealer
from shared.integrations.lgsp.dvcqg import DvcqgTarget
from shared.integrations.lgsp.gate import Gate, GatePolicy
from shared.integrations.lgsp.lgsp import LgspClient, LgspPopulation, LgspTarget
from shared.integrations.lgsp.settings import CitizenSettings, DvcqgSettings, LgspSettings, SyncSettings
from shared.integrations.lgsp.sync import Emit, Syncer
from shared.reliability.pipeline import Pipeline
from shared.reliability.policy import ProviderPolicy
from shared.reliability.settings import ReliabilitySettings
from shared.runtime.app import EventContext
from shared.storage.redis import Keys, get_fast_redis, get_redis

INTAKE = "intake"  # idempotency only: targets are gated by the syncer (a down target queues, never 503)


@dataclass(slots=True)
class LgspService:
    syncer: Syncer
    citizens: CitizenLookup
    lgsp: LgspClient
    dvcqg: DvcqgTarget
    intake: Pipeline | None = None

    async def admit(self, ctx: EventContext) -> None:
        """Claim the event (replay, 409, 400 as the runtime answers them); built once, not per event."""
        if self.intake is None:
            self.intake = Pipeline(get_fast_redis(), self.syncer.keys, "lgsp", {INTAKE: ProviderPolicy(INTAKE)},
                                   ReliabilitySettings().idempotency())
        await self.intake.admit(ctx, [INTAKE])


def build(env: str, emit: Emit | None = None, redis=None) -> LgspService:  # type: ignore[no-untyped-def]
    """Everything from settings; `redis`: a redis-py asyncio client (default: the process's)."""
    redis = redis if redis is not None else get_redis()
    keys = Keys(env)
    s, dq, lg, cz = SyncSettings(), DvcqgSettings(), LgspSettings(), CitizenSettings()
    seal = sealer(s.key_bytes())
    client = LgspClient(lg, redis, keys, seal)
    dvcqg = DvcqgTarget(dq, redis, keys, seal)
    available: dict[str, SyncTarget] = {"dvcqg": dvcqg, "lgsp": LgspTarget(client)}
    wanted = [t.strip() for t in s.targets.split(",") if t.strip()]
    targets = {t: available[t] for t in wanted}
    rates = {"dvcqg": (dq.rate, dq.burst), "lgsp": (lg.rate, lg.burst), "population": (lg.rate, lg.burst)}
    gates = {t: Gate(redis, keys, t, GatePolicy(rates[t][0], rates[t][1], s.breaker_failures, s.breaker_cooldown_ms))
             for t in rates}
    syncer = Syncer(redis, keys, targets, gates, seal, s, emit)
    lookup = CitizenLookup(redis, keys, LgspPopulation(client), gates["population"],
                           CitizenCache(redis, keys, seal, cz.cache_ttl_s), seal, max_wait_ms=s.request_wait_ms)
    return LgspService(syncer, lookup, client, dvcqg)


_services: dict[tuple[int, str], LgspService] = {}


def default_service(env: str, emit: Emit | None = None) -> LgspService:
    key = (id(asyncio.get_running_loop()), env)
    svc = _services.get(key)
    if svc is None:
        svc = _services[key] = build(env, emit)
    return svc
