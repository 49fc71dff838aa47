"""The reliability pipeline: admission, failover and completion, one Redis round trip each.

admission = idempotency claim (lease) + breaker check (fleet-wide half-open probe) + rate-limit take;
completion = store the reply + report the provider result to its breaker + append the audit record.
All in `pipeline.lua`, with Redis's clock in milliseconds.
"""

from __future__ import annotations

import asyncio
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
from shared.security.crypto import keyed_fingerprint, open_reply, seal_fields, seal_reply
from shared.storage.cluster import ClusterClient, key_slot
from shared.storage.redis import Keys
from shared.storage.resp import RespClient, RespError

log = logging.getLogger("dvci.reliability")
_SCRIPT = files("shared.reliability").joinpath("pipeline.lua").read_text()
# Redis Cluster, both slots of a step on one master: the same script, the event's record named in the spec
# (Redis >= 7 runs it when the node serves that key too; "non local key" otherwise, before any write)
_XSLOT = "#!lua flags=allow-cross-slot-keys\n" + _SCRIPT
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


def transitions_logged(kind: str, known: set[str], *items: Any) -> None:
    """Log and count breaker transitions the script reported (`name:from>to`)."""
    for tr in items:
        if tr:
            name, change = (tr.decode() if isinstance(tr, bytes) else tr).split(":", 1)
            log.warning("breaker transition", extra={"breaker": f"{kind}.{name}", "change": change})
            to = change.split(">", 1)[1]
            if metrics.ENABLED and name in known:
                metrics.BREAKER_TRANSITIONS.labels(kind, name, to).inc()
                metrics.BREAKER_STATE.labels(kind, name).set(metrics.BREAKER_VALUES.get(to, 0))


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
    encrypted: tuple[str, ...] = ()  # fields holding citizen data: stored encrypted (shared/security/crypto.py)


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
    dossier: str | None = None  # the event's `dossierid`: added to its audit record (`dvci audit show --dossier`)

    async def complete(self, stored_response: bytes) -> None:
        await self.pipeline.complete(self, stored_response)

    async def release(self, exc: BaseException) -> None:
        await self.pipeline.release(self)


class Pipeline:
    """Reliability state of one integration kind (its name) in Redis."""

    def __init__(self, redis: RespClient | ClusterClient, keys: Keys, kind: str, policies: dict[str, ProviderPolicy],
                 config: IdempotencyConfig | None = None):
        self.redis = redis
        self.keys = keys
        self.kind = kind
        self.policies = policies
        self.config = config or IdempotencyConfig()
        self.breaker_stream = keys.key(kind, "breaker-events")
        self.audit_stream = keys.key(kind, "audit")
        self.round_trips = 0
        # Redis Cluster: per-event records on their own slots, each step split by slot (see _admit_split)
        self.split = bool(getattr(redis, "cluster", False))

    # -- keys ----------------------------------------------------------------------------------
    def idem_key(self, event: CloudEvent) -> str:
        digest = event_digest(*event.key_parts())  # (source, id); a bulk recipient's own parts
        if self.split:  # its own hash tag: the fleet's idempotency records spread over every shard
            return self.keys.key(f"{self.kind}:{digest}", "idem")
        return self.keys.key(self.kind, "idem", digest)  # one node: the layout existing data has

    def breaker_key(self, provider: str) -> str:
        return self.keys.key(self.kind, "breaker", provider)

    def rate_key(self, provider: str) -> str:
        return self.keys.key(self.kind, "rate", provider)

    def recipient_key(self, recipient_id: str) -> str:
        return self.keys.key(self.kind, "rcpt", recipient_id)

    async def _run(self, keys: list[str], op: str, spec: dict[str, Any], script: str = _SCRIPT) -> list[Any]:
        self.round_trips += 1
        payload = orjson.dumps({k: v for k, v in spec.items() if v is not None})  # Lua: null is truthy
        try:
            if not tracing.enabled():
                return await self.redis.evalsha(script, keys, [op, payload])
            with tracing.span(f"reliability {op}", **{"db.system": "redis", "db.operation.name": "EVALSHA",
                                                      "dvci.kind": self.kind}):
                return await self.redis.evalsha(script, keys, [op, payload])
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
        transitions_logged(self.kind, set(self.policies), *items)

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
        spec = {"fp": keyed_fingerprint(event.fingerprint()), "lease": self.config.lease_ms,
                "ttl": self.config.in_progress_ttl_ms,
                "max_wait": self.config.max_rate_wait_ms, "providers": cand_specs,
                "rcpt": limit.lua() if limit else None,
                "hint": {"f": hint.field, "v": hint.value} if hint else None}
        keys = [key, rcpt_key, self.breaker_stream, *cand_keys]
        if hint:
            keys.append(hint.key)
        if self.split:
            status, r = await self._admit_split(key, keys, spec, providers)
        else:
            status, r = _named(await self._run(keys, "admit", spec), _REPLY_FIELDS)
        if status == "reroute":
            raise Reroute(r["value"])
        if status in ("ok", "recipient_limited"):
            adm = Admission(self, key, r["provider"] or None, float(r["wait_ms"]), bool(r.get("probe", 0)),
                            bool(r["takeover"]), int(r["tries"]), recipient_limited=status == "recipient_limited")
            ctx.claim = adm
            adm.dossier = str(event.extensions.get("dossierid") or "")[:100] or None
            if adm.recipient_limited and metrics.ENABLED:
                metrics.RATE_LIMITED.labels(self.kind, "recipient").inc()
            return adm
        if status == "replay":
            raise Replayed(await open_reply(r["response"], key))
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
        head = [self.breaker_stream] * 2 if self.split else [adm.key] * 2
        if self.split:
            spec["noclaim"] = 1  # the choice is recorded on the event's slot below, before the call
        status, r = _named(await self._run(
            [*head, self.breaker_stream, self.breaker_key(failed), *cand_keys], "next", spec), _NEXT_FIELDS)
        self._transitions(r["transition"])
        if status == "ok":
            adm.provider, adm.wait_ms, adm.probe = r["provider"], float(r["wait_ms"]), bool(r["probe"])
            if self.split:
                await self._run([adm.key], "assign", {"prov": adm.provider, "lease": self.config.lease_ms})
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
        spec: dict[str, Any] = {"resp": await seal_reply(stored_response, adm.key), "ttl": self.config.completed_ttl_ms,
                                 "result": self._result_spec(adm),
                                 "audit": {"dossier_id": adm.dossier, **adm.audit} if adm.audit and adm.dossier
                                 else adm.audit or None}
        keys = [adm.key, self.breaker_stream, breaker, self.audit_stream]
        c = adm.correlation
        if c is not None:
            spec["corr"] = {"fields": await seal_fields(c.fields, c.encrypted, "corr"), "ttl": c.ttl_ms, "id": c.id,
                            "lookup": c.lookup_key is not None}
            keys += [c.key, c.lookup_key or c.key, c.pending_key or c.key]
        split = self.split
        res = await (self._finish_split(adm, keys, spec, "complete") if split else self._run(keys, "complete", spec))
        self._transitions(res[1])

    async def release(self, adm: Admission) -> None:
        breaker = self.breaker_key(adm.result[0]) if adm.result else adm.key
        spec = {"keep": adm.ambiguous, "result": self._result_spec(adm)}
        keys = [adm.key, self.breaker_stream, breaker]
        res = await (self._finish_split(adm, keys, spec, "release") if self.split else self._run(keys, "release", spec))
        self._transitions(res[1])

    # -- Redis Cluster: each step split by slot ------------------------------------------------------
    async def _admit_split(self, key: str, keys: list[str], spec: dict[str, Any],
                           providers: list[str]) -> tuple[str, dict[str, Any]]:
        """Admission on a cluster: `choose` on the kind's slot (hint, recipient limit, breaker, rate limit),
        then `claim` on the event's slot naming the chosen provider (the provider must be recorded before
        the call, so the two are sequential: two round trips, two commands). Corner cases:
        - the claim is refused (duplicate in progress, replay, reuse): `refund` gives back the rate-limit
          slot, the recipient slot and a half-open probe that `choose` took;
        - a takeover whose previous attempt named another provider (or that `choose` found recipient-limited):
          refund, choose again restricted to that provider without the recipient limit, claim again;
        - a takeover `choose` counted against the recipient: the recipient slot is given back;
        - no provider available: nothing was claimed (choose runs first); the record is only read, so a
          duplicate still gets its stored reply, 409 or 400 while the providers are refused."""
        kind_keys = list(keys)
        kind_keys[0] = self.breaker_stream  # any key of the kind's slot: the idempotency record is elsewhere
        if kind_keys[1] == key:
            kind_keys[1] = self.breaker_stream
        whole = await self._on_one_node([key, self.breaker_stream], kind_keys, "admit", {**spec, "idem": key})
        if whole is not None:
            return _named(whole, _REPLY_FIELDS)
        kspec = {k: spec[k] for k in ("max_wait", "providers", "rcpt", "hint") if spec.get(k) is not None}
        status, r = _named(await self._run(kind_keys, "choose", kspec), _REPLY_FIELDS)
        claim = {"fp": spec["fp"], "lease": spec["lease"], "ttl": spec["ttl"]}
        for _ in range(2):
            if status not in ("ok", "recipient_limited"):
                if status in ("limited", "unavailable"):  # a duplicate still gets its replay / 409 / 400
                    res = await self._run([key], "claim", {**claim, "peek": 1})
                    if res[0] != b"none":
                        return _named(res, _REPLY_FIELDS)
                return status, r
            chosen = r["provider"] or ""
            took_rcpt = bool(status == "ok" and kspec.get("rcpt") and not kspec.get("tko"))
            res = await self._run([key], "claim", {**claim, "prov": chosen})
            answer = res[0].decode() if isinstance(res[0], bytes) else str(res[0])
            if answer == "ok":
                if res[1] and took_rcpt:  # a takeover is not the recipient's second message
                    await self._refund(kind_keys, kspec, chosen, rcpt=True)
                r.update(takeover=int(res[1]), tries=int(res[2]))
                return status, r
            if chosen:
                await self._refund(kind_keys, kspec, chosen, rcpt=took_rcpt, rate=True, probe=bool(r.get("probe")))
            if answer != "takeover":
                return _named(res, _REPLY_FIELDS)
            previous = res[1].decode() if isinstance(res[1], bytes) else str(res[1] or "")
            only = [p for p in kspec["providers"] if not previous or p["name"] == previous]
            if not only:
                return "unavailable", {"retry_ms": 1000, "previous": previous}
            kspec = {**kspec, "providers": only, "tko": 1}
            kspec.pop("hint", None)
            status, r = _named(await self._run(kind_keys, "choose", kspec), _REPLY_FIELDS)
        return "busy", {"retry_ms": 1000}  # the record changed hands twice meanwhile: the broker retries

    async def _on_one_node(self, owners: list[str], keys: list[str], op: str, spec: dict[str, Any]) -> list[Any] | None:
        """The whole step as one script when one master serves every slot it touches (a third of the events
        on three masters); None when not, or when the slot map was stale (nothing was written then)."""
        same_node = getattr(self.redis, "same_node", None)
        if same_node is None or not same_node(*owners):
            return None
        try:
            return await self._run(keys, op, spec, _XSLOT)
        except RespError as exc:
            if "non local key" in str(exc) or str(exc).startswith(("MOVED", "ASK", "CROSSSLOT")):
                return None
            raise

    async def _refund(self, kind_keys: list[str], kspec: dict[str, Any], provider: str, *, rcpt: bool = False,
                      rate: bool = False, probe: bool = False) -> None:
        pol = self.policies[provider]
        spec = {"rcpt": kspec["rcpt"]["i"] if rcpt else None,
                "ri": pol.rate.lua()["i"] if rate and pol.rate else None, "probe": 1 if probe else None}
        if any(v is not None for v in spec.values()):
            await self._run([kind_keys[1], self.breaker_key(provider), self.rate_key(provider)], "refund", spec)

    async def _finish_split(self, adm: Admission, keys: list[str], spec: dict[str, Any], op: str) -> list[Any]:
        """complete / release on a cluster: the event's record and the kind's state (breaker report, audit,
        correlation) are independent writes, sent together (one round trip of latency, two commands).
        Correlation keys outside the kind's slot get their own call; one master serving every slot: one script."""
        if op == "complete" and all(key_slot(k) == key_slot(self.breaker_stream) for k in keys[4:]):
            whole = await self._on_one_node([adm.key, self.breaker_stream],
                                            [self.breaker_stream if k == adm.key else k for k in keys], op,
                                            {**spec, "idem": adm.key})
            if whole is not None:
                return whole
        calls = [self._run([adm.key], op, {"resp": spec["resp"], "ttl": spec["ttl"]} if op == "complete"
                           else {"keep": spec.get("keep")})]
        kind_spec = {k: v for k, v in spec.items() if k not in ("resp", "keep") and v is not None}
        kind_keys = [self.breaker_stream if k == adm.key else k for k in keys[:4]]
        corr = kind_spec.pop("corr", None)
        if corr is not None:
            home = key_slot(self.breaker_stream)
            if all(key_slot(k) == home for k in keys[4:7]):
                kind_spec["corr"], kind_keys = corr, [*kind_keys, *keys[4:7]]
            else:
                calls.append(self._run([keys[4]] * 4 + keys[4:7], "complete", {"corr": corr}))
        kind_call = bool(kind_spec.get("result") or kind_spec.get("audit") or "corr" in kind_spec)
        if kind_call:
            if op == "release":
                kind_spec["noclaim"] = 1
            calls.append(self._run(kind_keys, op, kind_spec))
        results = await asyncio.gather(*calls)
        return results[-1] if kind_call else ["ok", ""]
