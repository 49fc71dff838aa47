"""The reliability pipeline: admission, failover and completion, one Redis round trip each.

admission = idempotency claim (lease) + breaker check (fleet-wide half-open probe) + rate-limit take;
completion = store the reply + report the provider result to its breaker + append the audit record.
All in `pipeline.lua`, with Redis's clock in milliseconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal

import orjson

from shared.observability import metrics, tracing
from shared.reliability.keys import event_digest
from shared.reliability.policy import IdempotencyConfig, ProviderPolicy, RateLimit
from shared.runtime.app import EventContext, Replayed
from shared.runtime.errors import (
    ConflictingReuse,
    EventInProgress,
    ProvidersUnavailable,
    RateLimited,
    StateUnavailable,
)
from shared.runtime.events import CloudEvent
from shared.storage.redis import Keys
from shared.storage.resp import RespClient, RespError

log = logging.getLogger("dvci.reliability")
_SCRIPT = files("shared.reliability").joinpath("pipeline.lua").read_text()
_REDIS_DOWN = (ConnectionError, TimeoutError, OSError)
_TRANSIENT = frozenset(("LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS"))

Outcome = Literal["ok", "fail"]


class Reroute(Exception):
    """Admission found the reroute hint's field holding another value than the caller routed for (e.g. a
    subscriber moved to another network): rank the candidates for `value` and admit again."""

    def __init__(self, value: str):
        super().__init__(value)
        self.value = value


@dataclass(frozen=True, slots=True)
class Hint:
    """A reroute hint checked inside admission: hash `key`, field `field`, routed for `value`."""

    key: str
    field: str
    value: str


# The fields of each reply of pipeline.lua, by status (replies are flat arrays: named here, once).
_REPLY_FIELDS: dict[str, tuple[str, ...]] = {
    "ok": ("provider", "wait_ms", "probe", "takeover", "tries"),
    "recipient_limited": ("wait_ms", "provider", "takeover", "tries"),
    "reroute": ("value",),
    "replay": ("response",),
    "conflict": (),
    "busy": ("retry_ms",),
    "limited": ("retry_ms", "previous"),
    "unavailable": ("retry_ms", "previous"),
}
_NEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "ok": ("provider", "wait_ms", "probe", "transition"),
    "limited": ("retry_ms", "transition"),
    "unavailable": ("retry_ms", "transition"),
}


def _named(res: list[Any], table: dict[str, tuple[str, ...]]) -> tuple[str, dict[str, Any]]:
    status = res[0].decode() if isinstance(res[0], bytes) else str(res[0])
    names = table.get(status, ())
    return status, {n: (v.decode() if isinstance(v, bytes) and n not in ("response",) else v)
                    for n, v in zip(names, res[1:], strict=False)}


@dataclass(slots=True)
class Correlation:
    """What completion stores for delivery receipts (same round trip): a hash under `key`; optionally a
    lookup key -> `id` and a pending index (providers whose reports do not carry our id)."""

    key: str
    fields: dict[str, str]
    ttl_ms: int
    id: str = ""
    lookup_key: str | None = None
    pending_key: str | None = None


@dataclass(slots=True)
class Admission:
    """A claimed event: the provider to call (and whether it is a half-open probe or a takeover)."""

    pipeline: Pipeline
    key: str
    provider: str | None
    wait_ms: float
    probe: bool
    takeover: bool
    tries: int
    recipient_limited: bool = False
    result: tuple[str, Outcome] | None = None
    ambiguous: str | None = None
    audit: dict[str, Any] = field(default_factory=dict)
    correlation: Correlation | None = None

    async def complete(self, stored_response: bytes) -> None:
        await self.pipeline.complete(self, stored_response)

    async def release(self, exc: BaseException) -> None:
        await self.pipeline.release(self)


class Pipeline:
    """Reliability state of one integration kind (its name) in Redis."""

    def __init__(self, redis: RespClient, keys: Keys, kind: str, policies: dict[str, ProviderPolicy],
                 config: IdempotencyConfig | None = None):
        self.redis = redis
        self.keys = keys
        self.kind = kind
        self.policies = policies
        self.config = config or IdempotencyConfig()
        self.breaker_stream = keys.key(kind, "breaker-events")
        self.audit_stream = keys.key(kind, "audit")
        self.round_trips = 0

    # -- keys ----------------------------------------------------------------------------------
    def idem_key(self, event: CloudEvent) -> str:
        return self.keys.key(self.kind, "idem", event_digest(event.source, event.id))

    def breaker_key(self, provider: str) -> str:
        return self.keys.key(self.kind, "breaker", provider)

    def rate_key(self, provider: str) -> str:
        return self.keys.key(self.kind, "rate", provider)

    def recipient_key(self, recipient_id: str) -> str:
        return self.keys.key(self.kind, "rcpt", recipient_id)

    async def _run(self, keys: list[str], op: str, spec: dict[str, Any]) -> list[Any]:
        self.round_trips += 1
        payload = orjson.dumps({k: v for k, v in spec.items() if v is not None})  # Lua: null is truthy
        try:
            if not tracing.enabled():
                return await self.redis.evalsha(_SCRIPT, keys, [op, payload])
            with tracing.span(f"reliability {op}", **{"db.system": "redis", "db.operation.name": "EVALSHA",
                                                      "dvci.kind": self.kind}):
                return await self.redis.evalsha(_SCRIPT, keys, [op, payload])
        except _REDIS_DOWN as exc:
            raise StateUnavailable(f"Redis unreachable during {op}: {type(exc).__name__}") from exc
        except RespError as exc:
            if str(exc).split(" ", 1)[0] in _TRANSIENT:  # restarting, failing over, read-only replica...
                raise StateUnavailable(f"Redis not ready during {op}: {str(exc)[:80]}") from exc
            raise

    def _candidates(self, providers: list[str], first_key: int) -> tuple[list[str], list[dict[str, Any]]]:
        keys: list[str] = []
        specs: list[dict[str, Any]] = []
        for i, name in enumerate(providers):
            pol = self.policies[name]
            rate = pol.rate.lua() if pol.rate else {"i": 0, "t": 0}
            specs.append({"name": name, "k": first_key + 2 * i, "cool": pol.breaker.cooldown_ms,
                          "probe": pol.breaker.probe_lease_ms, "ri": rate["i"], "rt": rate["t"]})
            keys += [self.breaker_key(name), self.rate_key(name)]
        return keys, specs

    def _transitions(self, *items: Any) -> None:
        for tr in items:
            if tr:
                name, change = (tr.decode() if isinstance(tr, bytes) else tr).split(":", 1)
                log.warning("breaker transition", extra={"breaker": f"{self.kind}.{name}", "change": change})
                to = change.split(">", 1)[1]
                if metrics.ENABLED and name in self.policies:
                    metrics.BREAKER_TRANSITIONS.labels(self.kind, name, to).inc()
                    metrics.BREAKER_STATE.labels(self.kind, name).set(metrics.BREAKER_VALUES.get(to, 0))

    # -- steps ---------------------------------------------------------------------------------
    async def admit(self, ctx: EventContext, providers: list[str], *,
                    recipient: tuple[str, RateLimit | None] | None = None, hint: Hint | None = None) -> Admission:
        """Claim the event and pick a provider, or raise the answer (replay, 409, 400, 429, 503), or
        Reroute when `hint` says the candidates were ranked for a stale value."""
        event = ctx.event
        key = self.idem_key(event)
        cand_keys, cand_specs = self._candidates(providers, 4)
        limit = recipient[1] if recipient else None
        rcpt_key = self.recipient_key(recipient[0]) if recipient and limit else key
        spec = {"fp": event.fingerprint(), "lease": self.config.lease_ms, "ttl": self.config.in_progress_ttl_ms,
                "max_wait": self.config.max_rate_wait_ms, "providers": cand_specs,
                "rcpt": limit.lua() if limit else None,
                "hint": {"f": hint.field, "v": hint.value} if hint else None}
        keys = [key, rcpt_key, self.breaker_stream, *cand_keys]
        if hint:
            keys.append(hint.key)
        status, r = _named(await self._run(keys, "admit", spec), _REPLY_FIELDS)
        if status == "reroute":
            raise Reroute(r["value"])
        if status in ("ok", "recipient_limited"):
            adm = Admission(self, key, r["provider"] or None, float(r["wait_ms"]), bool(r.get("probe", 0)),
                            bool(r["takeover"]), int(r["tries"]), recipient_limited=status == "recipient_limited")
            ctx.claim = adm
            if adm.recipient_limited and metrics.ENABLED:
                metrics.RATE_LIMITED.labels(self.kind, "recipient").inc()
            return adm
        if status == "replay":
            raise Replayed(r["response"])
        if status == "conflict":
            raise ConflictingReuse(
                f"event id {event.id!r} from {event.source!r} was already used with a different payload",
                errors=[{"field": "id", "problem": "reused with different data"}])
        retry_after = max(1.0, float(r["retry_ms"]) / 1000)
        if status == "busy":
            raise EventInProgress(f"event {event.id!r} is being processed by another instance",
                                  retry_after=retry_after)
        if status == "limited":
            if metrics.ENABLED:
                metrics.RATE_LIMITED.labels(self.kind, "provider").inc()
            raise RateLimited(f"{self.kind} providers at their contract rate", retry_after=retry_after)
        raise ProvidersUnavailable(
            f"no {self.kind} provider available (breakers open: {', '.join(providers)})", retry_after=retry_after)

    async def failover(self, adm: Admission, failed: str, remaining: list[str], *, count: bool = True) -> str | None:
        """Record `failed` as definitively failed (once per call: `count`) and claim the next provider;
        None when none is left."""
        cand_keys, cand_specs = self._candidates(remaining, 5)
        spec = {"failed": {"name": failed, "count": 1 if count else 0, "outcome": "fail",
                           "policy": self.policies[failed].breaker.lua()},
                "max_wait": self.config.max_rate_wait_ms, "lease": self.config.lease_ms,
                "providers": cand_specs}
        status, r = _named(await self._run(
            [adm.key, adm.key, self.breaker_stream, self.breaker_key(failed), *cand_keys], "next", spec), _NEXT_FIELDS)
        self._transitions(r["transition"])
        if status == "ok":
            adm.provider, adm.wait_ms, adm.probe = r["provider"], float(r["wait_ms"]), bool(r["probe"])
            return adm.provider
        adm.provider = None
        return None

    def _result_spec(self, adm: Admission) -> dict[str, Any] | None:
        if adm.result is None:
            return None
        name, outcome = adm.result
        return {"name": name, "outcome": outcome, "policy": self.policies[name].breaker.lua()}

    async def complete(self, adm: Admission, stored_response: bytes) -> None:
        breaker = self.breaker_key(adm.result[0]) if adm.result else adm.key
        spec: dict[str, Any] = {"resp": stored_response.decode(), "ttl": self.config.completed_ttl_ms,
                                 "result": self._result_spec(adm), "audit": adm.audit or None}
        keys = [adm.key, self.breaker_stream, breaker, self.audit_stream]
        c = adm.correlation
        if c is not None:
            spec["corr"] = {"fields": c.fields, "ttl": c.ttl_ms, "id": c.id, "lookup": c.lookup_key is not None}
            keys += [c.key, c.lookup_key or c.key, c.pending_key or c.key]
        res = await self._run(keys, "complete", spec)
        self._transitions(res[1])

    async def release(self, adm: Admission) -> None:
        breaker = self.breaker_key(adm.result[0]) if adm.result else adm.key
        spec = {"keep": adm.ambiguous, "result": self._result_spec(adm)}
        res = await self._run([adm.key, self.breaker_stream, breaker], "release", spec)
        self._transitions(res[1])
