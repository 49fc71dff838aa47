"""Dossier status sync: per dossier and target, changes reach the target in version order, through outages.

Per (target, dossier) Redis keeps (all under the `{lgsp}` hash tag, payloads sealed with AES-256-GCM):
  dos:<t>:<d>    hash: dv (delivered version), pv/ps/pc (pending state: version, sealed payload, changed_at
                 ms; coalesced to the latest version), s<v> (sealed step row of version v), known (the target
                 holds the record), amb (the last push was ambiguous), ls/lst (last delivered state and its
                 status code, for reconcile), qt (queued since), id (the dossier id), rq (re-pushes asked)
  steps:<t>:<d>  zset of the versions whose step rows wait (each kept, sent in order)
  queue:<t>      zset dossier -> oldest waiting change (ms): the outbox, drained oldest first
  lock:<t>:<d>   the send lease: one sender per dossier and target, fleet-wide
  synced:<t>     zset dossier -> last delivery (ms): what the daily reconcile re-checks
  stat:<t>       hash: last_success, rejected counts

A change older than (or equal to) the delivered version is superseded and never sent. Every change is
written to the outbox first; whoever holds the dossier's lease sends the latest state and the waiting
step rows, acknowledges exactly what it sent, and releases the lease only when nothing waits (atomically,
so a change added meanwhile is never stranded). A target that is down (breaker open, unavailable,
ambiguous) leaves the outbox as it is; the drain job (PingSource `lgsp-drain`) and the first success
after an outage empty it within the target's rate limit.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from shared.integrations.lgsp import HCM, Pending, SyncTarget, dvcqg, lgsp, mapping
from shared.integrations.lgsp.audit import audit
from shared.integrations.lgsp.crypto import Sealer
from shared.integrations.lgsp.gate import Gate, GateClosed
from shared.integrations.lgsp.settings import SyncSettings
from shared.observability import metrics
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable
from shared.reliability.keys import event_digest
from shared.storage.redis import Keys

log = logging.getLogger("dvci.lgsp")

SYNCED = "vn.gov.dvc.dossier.synced"
REJECTED = "vn.gov.dvc.dossier.sync.rejected"
Emit = Callable[[str, dict[str, Any], str, str], Awaitable[Any]]  # (type, data, key, dossier_id)

_LUA = """
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local H, Z, Q = KEYS[1], KEYS[2], KEYS[3]
local function more()
  return redis.call('HEXISTS', H, 'pv') == 1 or redis.call('ZCARD', Z) > 0
end
if op == 'enqueue' then
  -- ARGV: op, version, changed_ms, state_blob, step_blob, member, dossier_id, ttl_ms
  local v = tonumber(ARGV[2])
  local dv = tonumber(redis.call('HGET', H, 'dv') or '0')
  if v <= dv then return {'superseded', dv} end
  local pv = tonumber(redis.call('HGET', H, 'pv') or '0')
  local r = 'queued'
  if v > pv then
    redis.call('HSET', H, 'pv', ARGV[2], 'ps', ARGV[4], 'pc', ARGV[3])
  elseif v < pv and ARGV[5] == '' then
    r = 'superseded'
  end
  if ARGV[5] ~= '' then
    redis.call('ZADD', Z, v, ARGV[2])
    redis.call('HSET', H, 's' .. ARGV[2], ARGV[5])
  end
  redis.call('HSETNX', H, 'id', ARGV[7])
  redis.call('HSETNX', H, 'qt', tostring(now))
  redis.call('ZADD', Q, 'LT', tonumber(ARGV[3]), ARGV[6])
  redis.call('PEXPIRE', H, ARGV[8])
  redis.call('PEXPIRE', Z, ARGV[8])
  return {r, dv}
elseif op == 'ack' then
  -- KEYS: H Z Q L S ST; ARGV: op, token, sent_pv, steps_csv, outcome, last_blob, status_code, member, lock_ms
  local L, S, ST = KEYS[4], KEYS[5], KEYS[6]
  if redis.call('GET', L) ~= ARGV[2] then return {'lost', 0, 0} end
  redis.call('PEXPIRE', L, ARGV[9])
  local dv = tonumber(redis.call('HGET', H, 'dv') or '0')
  local sent = tonumber(ARGV[3])
  if sent > dv then
    dv = sent
    redis.call('HSET', H, 'dv', ARGV[3])
  end
  if sent > 0 and redis.call('HGET', H, 'pv') == ARGV[3] then redis.call('HDEL', H, 'pv', 'ps', 'pc') end
  for v in string.gmatch(ARGV[4], '[^,]+') do
    redis.call('ZREM', Z, v)
    redis.call('HDEL', H, 's' .. v)
  end
  local dropped = 0
  for _, v in ipairs(redis.call('ZRANGEBYSCORE', Z, '-inf', dv)) do
    redis.call('ZREM', Z, v)
    redis.call('HDEL', H, 's' .. v)
    dropped = dropped + 1
  end
  if ARGV[5] == 'ok' then
    redis.call('HSET', H, 'known', '1')
    redis.call('HDEL', H, 'amb')
    if ARGV[6] ~= '' then redis.call('HSET', H, 'ls', ARGV[6], 'lst', ARGV[7]) end
    redis.call('ZADD', S, now, ARGV[8])
    redis.call('HSET', ST, 'last_success', tostring(now))
  else
    redis.call('HINCRBY', ST, 'rejected', 1)
    redis.call('HSET', ST, 'last_rejected', tostring(now))
  end
  local m = more()
  if not m then
    redis.call('ZREM', Q, ARGV[8])
    redis.call('HDEL', H, 'qt')
  end
  return {'ok', m and 1 or 0, dropped}
elseif op == 'release' then
  -- KEYS: H Z Q L; ARGV: op, token, force, ambiguous
  local L = KEYS[4]
  if redis.call('GET', L) ~= ARGV[2] then return 'lost' end
  if ARGV[4] == '1' then redis.call('HSET', H, 'amb', '1') end
  if ARGV[3] == '0' and more() then return 'more' end
  redis.call('DEL', L)
  return 'released'
elseif op == 'requeue' then
  -- ARGV: op, member, forget_known: the last delivered state waits again (resync, reconcile)
  if redis.call('HEXISTS', H, 'pv') == 0 then
    local ls = redis.call('HGET', H, 'ls')
    if not ls then return 0 end
    redis.call('HSET', H, 'pv', redis.call('HGET', H, 'dv'), 'ps', ls, 'pc', tostring(now))
  end
  if ARGV[3] == '1' then redis.call('HDEL', H, 'known') end
  redis.call('HINCRBY', H, 'rq', 1)
  redis.call('HSETNX', H, 'qt', tostring(now))
  redis.call('ZADD', Q, 'LT', now, ARGV[2])
  return 1
end
"""


def _ms(value: str | datetime) -> int:
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=HCM)
    return int(dt.timestamp() * 1000)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass(slots=True)
class DrainResult:
    delivered: int = 0          # highest version now delivered
    rejected: dict[int, str] = field(default_factory=dict)  # version -> detail
    pushes: int = 0
    state: str = "done"         # done | busy | closed | failed


class Syncer:
    """The sync state of every target in Redis and the sending loop (request path, drain, reconcile)."""

    def __init__(self, redis, keys: Keys, targets: dict[str, SyncTarget], gates: dict[str, Gate],  # type: ignore[no-untyped-def]
                 sealer: Sealer, settings: SyncSettings, emit: Emit | None = None):
        self.redis, self.keys, self.targets, self.gates = redis, keys, targets, gates
        self.sealer, self.s, self.emit = sealer, settings, emit
        self._script = redis.register_script(_LUA)
        self._drains: set[asyncio.Task] = set()

    # -- keys ----------------------------------------------------------------------------------
    @staticmethod
    def member(dossier_id: str) -> str:
        return event_digest("dossier", dossier_id, length=24)

    def _k(self, target: str, member: str) -> tuple[str, str, str, str]:
        k = self.keys.key
        return (k("lgsp", "dos", target, member), k("lgsp", "steps", target, member), k("lgsp", "queue", target),
                k("lgsp", "lock", target, member))

    def queue_key(self, target: str) -> str:
        return self.keys.key("lgsp", "queue", target)

    # -- the outbox ----------------------------------------------------------------------------
    async def enqueue(self, target: str, change: dict[str, Any]) -> str:
        """Record one change in the target's outbox: 'queued' or 'superseded'."""
        member = self.member(change["dossier_id"])
        h, z, q, _ = self._k(target, member)
        version = int(change["version"])
        state_blob = self.sealer.seal(orjson.dumps(change), h)
        step_blob = b""
        if change.get("step") and self.targets[target].keeps_steps:
            row = {k: change.get(k) for k in ("dossier_id", "version", "status", "changed_at", "step")}
            step_blob = self.sealer.seal(orjson.dumps(row), h + ":s")
        res = await self._script(keys=[h, z, q], args=[
            "enqueue", version, _ms(change["changed_at"]), state_blob, step_blob, member, change["dossier_id"],
            self.s.history_ttl_s * 1000])
        return _text(res[0])

    async def _load(self, target: str, member: str) -> tuple[Pending | None, dict[str, str], int]:
        h, z, _, _ = self._k(target, member)
        raw = await self.redis.hgetall(h)
        fields = {_text(k): v for k, v in raw.items()}
        versions = [int(_text(v)) for v in await self.redis.zrange(z, 0, -1)]
        meta = {k: _text(v) for k, v in fields.items() if k in ("dv", "pv", "pc", "known", "amb", "id", "rq")}
        pv = int(meta.get("pv", 0))
        steps = [(v, orjson.loads(self.sealer.open(fields[f"s{v}"], h + ":s"))) for v in versions
                 if f"s{v}" in fields]
        if not pv and not steps:
            return None, meta, 0
        state = orjson.loads(self.sealer.open(fields["ps"], h)) if pv else None
        dossier_id = meta.get("id") or (state or steps[0][1])["dossier_id"]
        # the first push creates the record (isUpdating False), later ones update it; after an ambiguous
        # push we cannot know, so the target is asked (and a wrong guess is corrected once either way)
        known: bool | None = True if meta.get("known") == "1" else None if meta.get("amb") == "1" else False
        # the same state re-sent keeps its reference; a resync/reconcile re-push (rq) is a new one
        ref = event_digest(target, dossier_id, str(pv), meta.get("rq", "0"))
        return Pending(dossier_id, pv or None, state, steps, known, ref), meta, pv

    # -- sending -------------------------------------------------------------------------------
    async def drain_dossier(self, target: str, member: str, *, max_wait_ms: float,
                            own_version: int | None = None) -> DrainResult:
        """Send what waits for one dossier while holding its lease; stops at the first failure."""
        h, z, q, lock = self._k(target, member)
        token = secrets.token_hex(8)
        result = DrainResult()
        if not await self.redis.set(lock, token, nx=True, px=self.s.lock_ms):
            result.state = "busy"
            return result
        gate = self.gates[target]
        tgt = self.targets[target]
        ambiguous = False
        try:
            while True:
                item, meta, pv = await self._load(target, member)
                result.delivered = int(meta.get("dv", 0))
                if item is None:
                    if _text(await self._script(keys=[h, z, q, lock], args=["release", token, 0, 0])) != "more":
                        token = ""
                        return result
                    continue
                try:
                    await gate.take(max_wait_ms)
                    await self._paced(target, tgt.push(item))
                    outcome, detail = "ok", ""
                    await gate.report(True)
                except GateClosed:
                    result.state = "closed"
                    return result
                except ProviderRejected as exc:
                    await gate.report(True)
                    outcome, detail = "rejected", exc.detail
                except (ProviderUnavailable, ProviderAmbiguous) as exc:
                    await gate.report(False)
                    ambiguous = isinstance(exc, ProviderAmbiguous)
                    log.warning("sync target unavailable; the change waits in the outbox",
                                extra={"target": target, "error": exc.detail[:200]})
                    if metrics.ENABLED:
                        metrics.PROVIDER_CALLS.labels("lgsp", target, "unavailable").inc()
                    result.state = "failed"
                    return result
                result.pushes += 1
                if not await self._ack(target, member, token, item, pv, meta, outcome, detail, own_version, result):
                    token = ""  # our lease expired mid-push: the new holder re-sends
                    result.state = "failed"
                    return result
        finally:
            if token:
                await self._script(keys=[h, z, q, lock], args=["release", token, 1, 1 if ambiguous else 0])

    async def _ack(self, target: str, member: str, token: str, item: Pending, pv: int, meta: dict[str, str],
                   outcome: str, detail: str, own_version: int | None, result: DrainResult) -> bool:
        """Acknowledge exactly what was sent (False: the lease was lost meanwhile)."""
        h, z, q, lock = self._k(target, member)
        last_blob, code = b"", ""
        if item.state is not None and outcome == "ok":
            last_blob = self.sealer.seal(orjson.dumps(item.state), h)
            code = mapping("dvcqg")["trang_thai_ho_so"][item.state["status"]]
        res = await self._script(keys=[h, z, q, lock, self.keys.key("lgsp", "synced", target),
                                       self.keys.key("lgsp", "stat", target)], args=[
            "ack", token, pv, ",".join(str(v) for v, _ in item.steps), outcome, last_blob, code, member,
            self.s.lock_ms])
        if _text(res[0]) == "lost":
            return False
        await self._after(target, item, outcome, detail, own_version, result, meta)
        return True

    async def drain_batch(self, target: str, members: list[str], *, max_wait_ms: float) -> DrainResult:
        """Several dossiers in one call (DongBoHoSoMC and CapNhatTienDoHoSoMC take lists): those whose
        first-push question is settled; the rest, and whatever arrived meanwhile, one by one after."""
        tgt = self.targets[target]
        result = DrainResult()
        tokens: dict[str, str] = {}
        for m in members:
            token = secrets.token_hex(8)
            if await self.redis.set(self._k(target, m)[3], token, nx=True, px=self.s.lock_ms):
                tokens[m] = token
        loaded: dict[str, tuple[Pending, dict[str, str], int]] = {}
        ambiguous = False
        try:
            for m in tokens:
                item, meta, pv = await self._load(target, m)
                if item is not None and item.known is not None:
                    loaded[m] = (item, meta, pv)
            if loaded:
                gate = self.gates[target]
                try:
                    await gate.take(max_wait_ms)
                    outcomes = await self._paced(target, tgt.push_many([it for it, _, _ in loaded.values()]))  # type: ignore[attr-defined]
                    await gate.report(True)
                except GateClosed:
                    result.state = "closed"
                    return result
                except (ProviderUnavailable, ProviderAmbiguous) as exc:
                    await gate.report(False)
                    ambiguous = isinstance(exc, ProviderAmbiguous)
                    log.warning("sync target unavailable; the changes wait in the outbox",
                                extra={"target": target, "error": exc.detail[:200], "dossiers": len(loaded)})
                    result.state = "failed"
                    return result
                result.pushes += 1
                for m, (item, meta, pv) in loaded.items():
                    err = outcomes.get(item.dossier_id)
                    outcome, detail = ("rejected", err.detail) if isinstance(err, ProviderRejected) else ("ok", "")
                    if not await self._ack(target, m, tokens[m], item, pv, meta, outcome, detail, None, result):
                        tokens.pop(m)
        finally:
            for m, token in tokens.items():
                h, z, q, lock = self._k(target, m)
                await self._script(keys=[h, z, q, lock], args=["release", token, 1, 1 if ambiguous and m in loaded
                                                                               else 0])
        if result.state == "done":
            for m in members:  # not batched (unsure, busy) or changed meanwhile
                if await self.redis.zscore(self.queue_key(target), m) is not None:
                    res = await self.drain_dossier(target, m, max_wait_ms=max_wait_ms)
                    result.pushes += res.pushes
                    if res.state in ("closed", "failed"):
                        result.state = res.state
                        break
        return result

    async def _paced(self, target: str, call: Awaitable[Any]) -> Any:
        """Run a push whose first call has its rate slot; every further call takes its own."""
        pace_var = dvcqg.pace_var if target == dvcqg.NAME else lgsp.pace_var
        gate = self.gates[target]
        first = True

        async def pace() -> None:
            nonlocal first
            if first:
                first = False
                return
            await gate.take(self.s.drain_wait_ms, slot_only=True)

        reset = pace_var.set(pace)
        try:
            return await call
        finally:
            pace_var.reset(reset)

    async def _after(self, target: str, item: Pending, outcome: str, detail: str, own_version: int | None,
                     result: DrainResult, meta: dict[str, str]) -> None:
        versions = sorted({v for v, _ in item.steps} | ({item.version} if item.version else set()))
        top = max(versions) if versions else 0
        if outcome == "rejected":
            for v in versions:
                result.rejected[v] = detail
            result.delivered = max(result.delivered, item.version or 0)
            if metrics.ENABLED:
                metrics.PROVIDER_CALLS.labels("lgsp", target, "rejected").inc()
            log.warning("sync target rejected the data", extra={"target": target, "version": top,
                                                                 "error": detail[:200]})
            await audit(self.redis, self.keys, "sync.rejected", target=target, dossier=item.dossier_id,
                        version=top, detail=detail[:300])
            if own_version not in versions:
                await self._emit(REJECTED, {"dossier_id": item.dossier_id, "version": top, "target": target,
                                            "detail": detail[:500]}, f"{target}/{item.dossier_id}/{top}/rejected",
                                 item.dossier_id)
            return
        if metrics.ENABLED:
            metrics.PROVIDER_CALLS.labels("lgsp", target, "ok").inc()
        if item.version is None or item.state is None:
            return
        result.delivered = max(result.delivered, item.version)
        lag_s = max(0.0, time.time() - int(meta.get("pc") or _ms(item.state["changed_at"])) / 1000)
        if metrics.ENABLED:
            metrics.SYNC_LAG.labels(target).observe(lag_s)
        if own_version != item.version:  # a queued change reached its target
            await self._emit(SYNCED, {"dossier_id": item.dossier_id, "version": item.version, "target": target,
                                      "lag_s": round(lag_s, 3)}, f"{target}/{item.dossier_id}/{item.version}/synced",
                             item.dossier_id)

    async def _emit(self, type_: str, data: dict[str, Any], key: str, dossier_id: str) -> None:
        if self.emit is None:
            return
        try:
            await self.emit(type_, data, key, dossier_id)
        except Exception as exc:  # the sync itself is done; an operator sees the log line
            log.warning("could not emit", extra={"ce_type": type_, "error": str(exc)[:200]})

    # -- the request path ----------------------------------------------------------------------
    async def sync_change(self, change: dict[str, Any]) -> list[dict[str, Any]]:
        """Queue the change for every target and send it where possible: one result per target."""
        names = list(self.targets)
        results = await asyncio.gather(*(self._sync_one(t, change) for t in names))
        return [{"target": t, **r} for t, r in zip(names, results, strict=True)]

    async def _sync_one(self, target: str, change: dict[str, Any]) -> dict[str, Any]:
        version = int(change["version"])
        if await self.enqueue(target, change) == "superseded":
            return {"state": "superseded"}
        member = self.member(change["dossier_id"])
        res = await self.drain_dossier(target, member, max_wait_ms=self.s.request_wait_ms, own_version=version)
        if version in res.rejected:
            return {"state": "rejected", "detail": res.rejected[version][:500]}
        if res.delivered >= version:
            if res.pushes:
                self._drain_soon(target)
            return {"state": "synced"}
        detail = {"busy": "another instance is sending this dossier",
                  "closed": "target unavailable (breaker open) or at its rate limit",
                  "failed": "target unavailable"}.get(res.state)
        return {"state": "queued", **({"detail": detail} if detail else {})}

    def _drain_soon(self, target: str) -> None:
        """After a success: if changes wait for this target, one instance drains them now."""

        async def run() -> None:
            try:
                if await self.redis.zcard(self.queue_key(target)) == 0:
                    return
                lease = self.keys.key("lgsp", "draining", target)
                if await self.redis.set(lease, "1", nx=True, px=int(self.s.drain_budget_s * 1000)):
                    try:
                        await self.drain_target(target, budget_s=self.s.drain_budget_s)
                    finally:
                        await self.redis.delete(lease)
            except Exception:
                log.warning("background drain failed", exc_info=True)

        if len(self._drains) < 2:
            task = asyncio.get_running_loop().create_task(run())
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)

    # -- jobs ----------------------------------------------------------------------------------
    async def drain_target(self, target: str, *, budget_s: float) -> dict[str, int]:
        """Send what waits for `target`, oldest dossiers first, within the rate limit and `budget_s`
        (in batches where the target takes lists)."""
        deadline = time.monotonic() + budget_s
        counts = {"dossiers": 0, "pushes": 0, "busy": 0}
        seen: set[str] = set()
        stop = asyncio.Event()
        batch = self.s.batch_size if hasattr(self.targets[target], "push_many") else 1
        sem = asyncio.Semaphore(self.s.drain_concurrency if batch == 1 else max(1, self.s.drain_concurrency // 4))

        async def one(members: list[str]) -> None:
            async with sem:
                if stop.is_set() or time.monotonic() > deadline:
                    return
                if len(members) == 1:
                    res = await self.drain_dossier(target, members[0], max_wait_ms=self.s.drain_wait_ms)
                else:
                    res = await self.drain_batch(target, members, max_wait_ms=self.s.drain_wait_ms)
                counts["pushes"] += res.pushes
                if res.state == "busy":
                    counts["busy"] += 1
                elif res.state in ("closed", "failed"):
                    stop.set()
                else:
                    counts["dossiers"] += len(members)

        while not stop.is_set() and time.monotonic() < deadline:
            page = [_text(m) for m in await self.redis.zrange(self.queue_key(target), 0, 999)]
            page = [m for m in page if m not in seen]
            if not page:
                break
            seen.update(page)
            units = [page[i:i + batch] for i in range(0, len(page), batch)]
            await one(units[0])  # alone: after an outage it is the breaker's single probe
            await asyncio.gather(*(one(u) for u in units[1:]))
        return counts

    async def drain(self, budget_s: float | None = None) -> dict[str, dict[str, int]]:
        budget = budget_s if budget_s is not None else self.s.drain_budget_s
        names = list(self.targets)
        done = await asyncio.gather(*(self.drain_target(t, budget_s=budget) for t in names))
        return dict(zip(names, done, strict=True))

    async def reconcile(self, target: str = dvcqg.NAME, *, budget_s: float = 3600.0,
                        resume: bool = False) -> dict[str, int]:
        """Ask the target for every dossier synced in the window; re-push those whose status differs.
        Resumable: a run that outlives `budget_s` leaves its cursor (`{lgsp}:reconcile:<target>`), and the
        next drain tick (`resume`) carries on from it. Returns the counts so far (`done` 1 when finished)."""
        tgt = self.targets.get(target)
        state_key = self.keys.key("lgsp", "reconcile", target)
        raw = await self.redis.get(state_key)
        if resume and raw is None:
            return {}
        if tgt is None:
            return {"done": 1}
        now_ms = time.time() * 1000
        state: dict[str, Any] = orjson.loads(raw) if raw is not None and resume else {
            "since": now_ms - self.s.reconcile_window_s * 1000, "until": now_ms,
            "counts": {"checked": 0, "matching": 0, "repushed": 0, "missing": 0, "errors": 0}}
        counts: dict[str, int] = state["counts"]
        deadline = time.monotonic() + budget_s
        synced = self.keys.key("lgsp", "synced", target)
        finished = False
        while time.monotonic() < deadline:
            page = await self.redis.zrangebyscore(synced, f"({state['since']}", state["until"], start=0, num=200,
                                                  withscores=True)
            if not page:
                finished = True
                break
            for raw_member, score in page:
                if time.monotonic() >= deadline:
                    break
                await self._reconcile_one(target, tgt, _text(raw_member), counts)
                state["since"] = score
        if finished:
            await self.redis.delete(state_key)
            log.info("reconcile done", extra={"target": target, **counts})
            return {**counts, "done": 1}
        await self.redis.set(state_key, orjson.dumps(state), ex=2 * 24 * 3600)
        return {**counts, "done": 0}

    async def _reconcile_one(self, target: str, tgt: SyncTarget, member: str, counts: dict[str, int]) -> None:
        h, z, q, _ = self._k(target, member)
        dossier_id, code = (_text(v) if v else "" for v in await self.redis.hmget(h, "id", "lst"))
        if not dossier_id:
            return
        counts["checked"] += 1
        try:
            await self.gates[target].take(self.s.drain_wait_ms)
            current = await tgt.current_status(dossier_id)
        except (GateClosed, ProviderUnavailable, ProviderAmbiguous, ProviderRejected):
            counts["errors"] += 1
            return
        if current == code:
            counts["matching"] += 1
            return
        counts["missing" if current is None else "repushed"] += 1
        await self._script(keys=[h, z, q], args=["requeue", member, 1 if current is None else 0])
        await self.drain_dossier(target, member, max_wait_ms=self.s.drain_wait_ms)

    async def resync(self, dossier_id: str, *, reason: str, by: str) -> dict[str, str]:
        """Push the last delivered state of a dossier again to every target (audited)."""
        member = self.member(dossier_id)
        await audit(self.redis, self.keys, "sync.resync", dossier=dossier_id, by=by, reason=reason[:300])
        out: dict[str, str] = {}
        for target in self.targets:
            h, z, q, _ = self._k(target, member)
            if not await self._script(keys=[h, z, q], args=["requeue", member, 0]):
                out[target] = "unknown dossier"
                continue
            res = await self.drain_dossier(target, member, max_wait_ms=self.s.drain_wait_ms)
            out[target] = "synced" if res.state == "done" and not res.rejected else \
                ("rejected" if res.rejected else "queued")
        return out

    async def status(self) -> list[dict[str, Any]]:
        rows = []
        now = time.time()
        for target in self.targets:
            q = self.queue_key(target)
            oldest = await self.redis.zrange(q, 0, 0, withscores=True)
            stat = {_text(k): _text(v) for k, v in (await self.redis.hgetall(
                self.keys.key("lgsp", "stat", target))).items()}
            last = int(stat.get("last_success", 0))
            rows.append({"target": target, "queued": await self.redis.zcard(q),
                         "oldest_wait_s": round(now - oldest[0][1] / 1000, 1) if oldest else 0.0,
                         "last_success": datetime.fromtimestamp(last / 1000, HCM).isoformat(timespec="seconds")
                         if last else None,
                         "rejected": int(stat.get("rejected", 0)), "breaker": await self.gates[target].state()})
        return rows
