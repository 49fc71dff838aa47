"""Console page times with 100,000 audit records and 10,000 dead letters present (prints a table).

    python -m bench.console [--audit 100000] [--letters 10000] [--runs 20]

Fills a fresh namespace of REDIS_URL (or the embedded Redis): per-kind audit streams (SMS accepted entries:
the spend page folds them), dead letters through DeadLetterStore (encrypted, as the dead_letter function
keeps them), dossier timelines and minute counters through shared/observability/timeline.py, audit-chain
records through shared/security/audit.py. Then renders each page in-process (ASGI, no network) `--runs`
times after one warm-up (the warm-up folds the new dead letters and audit entries into the console's
indexes once; it is printed separately). Also measures the runtime's timeline hook: the cost of one
`timeline.record` (the one extra Redis command per outcome event of a dossier).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
import uuid

import orjson


async def fill(redis, keys, n_audit: int, n_letters: int) -> dict[str, float]:
    from shared.observability import timeline
    from shared.reliability.deadletters import DeadLetterStore
    from shared.runtime.events import CloudEvent
    from shared.security.audit import Audit

    took: dict[str, float] = {}
    t = time.perf_counter()
    providers = ("viettel", "vnpt", "mobifone")
    carriers = ("viettel", "vinaphone", "mobifone")
    for start in range(0, n_audit, 5000):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(n_audit, start + 5000)):
                kind = "sms" if i % 5 else "email"
                pipe.xadd(keys.key(kind, "audit"), {"kind": kind, "provider": providers[i % 3],
                                                    "carrier": carriers[(i // 3) % 3], "outcome": "accepted",
                                                    "segments": "1", "cost_vnd": "650", "ref": uuid.uuid4().hex[:24],
                                                    "at": str(int(time.time() * 1000))},
                          maxlen=None)
            await pipe.execute()
    took["audit streams"] = time.perf_counter() - t
    t = time.perf_counter()
    audit = Audit(redis, keys)
    for i in range(200):
        await audit.record(actor=f"console:op{i % 3}", action="dlq.replay", kind="dlq", subject=f"letter-{i}",
                           detail={"reason": "bench"})
    took["audit chain (200)"] = time.perf_counter() - t
    t = time.perf_counter()
    store = DeadLetterStore(redis, keys)
    types = ("vn.gov.dvc.sms.send.requested", "vn.gov.dvc.email.send.requested",
             "vn.gov.dvc.postal.shipment.requested", "vn.gov.dvc.dossier.status.changed")

    async def one(i: int) -> None:
        ev = CloudEvent(id=str(uuid.uuid4()), source="/dvc/core/bench", type=types[i % 4],
                        extensions={"knativeerrorcode": ("503", "400", "429")[i % 3],
                                    "dossierid": f"000.00.01.H29-261128-{i % 2000:05d}"},
                        data={"to": "0912345678", "text": "Ho so da duoc tiep nhan", "n": i})
        await store.record(ev)

    for start in range(0, n_letters, 20):
        await asyncio.gather(*(one(i) for i in range(start, min(n_letters, start + 20))))
    took["dead letters"] = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(5000):
        await timeline.record(redis, keys, f"000.00.01.H29-261128-{i % 1000:05d}", "sms", "vn.gov.dvc.sms.accepted",
                              providers[i % 3], "accepted", time.time() - (i % 180) * 60, event_id=str(i),
                              duration_ms=float(i % 200))
    took["timeline (5,000 records, sequential)"] = time.perf_counter() - t
    return took


async def hook_cost(n: int = 5000) -> tuple[float, float]:
    """(µs per timeline.record awaited one by one, µs per record when n are in flight: the runtime's
    fire-and-forget case) on the runtime's RESP client."""
    from shared.observability import timeline
    from shared.storage.redis import Keys, get_fast_redis

    fast = get_fast_redis()
    keys = Keys("dev-console-bench-hook")
    await timeline.record(fast, keys, "warm", "sms", "vn.gov.dvc.sms.accepted", "viettel", "accepted", time.time())
    t = time.perf_counter()
    for i in range(n):
        await timeline.record(fast, keys, f"D-{i}", "sms", "vn.gov.dvc.sms.accepted", "viettel", "accepted",
                              time.time(), event_id=str(i), duration_ms=12.0)
    seq = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for i in range(n):
        timeline.schedule(fast, keys, f"D-{i}", "vn.gov.dvc.sms.accepted", "viettel", "accepted", event_id=str(i),
                          duration_ms=12.0)
    await timeline.drain()
    par = (time.perf_counter() - t) / n * 1e6
    return seq, par


async def main(args: argparse.Namespace) -> None:
    import httpx
    import redis.asyncio as aioredis

    from console.auth import hash_password
    from console.settings import ConsoleSettings
    from shared.storage.redis import Keys, resolve_url

    env = f"dev-console-bench-{uuid.uuid4().hex[:6]}"
    os.environ["DVCI_ENV"] = env
    url = resolve_url()
    redis = aioredis.Redis.from_url(url)
    keys = Keys(env)
    print(f"bench.console: filling {env} ({'REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded Redis'}): "
          f"{args.audit:,} audit records, {args.letters:,} dead letters", flush=True)
    for what, s in (await fill(redis, keys, args.audit, args.letters)).items():
        print(f"  filled {what:40} {s:7.2f} s")

    from console.app import create_app

    settings = ConsoleSettings(accounts={"op": {"role": "operator", "password_hash": hash_password("bench-pass")}},
                               broker_url="http://127.0.0.1:1/")
    app = create_app(redis_url=url, env=env, settings=settings)
    pages = ["/timeline?dossier=000.00.01.H29-261128-00007", "/overview", "/deadletters",
             "/deadletters?kind=sms&code=503&since=24h", "/deadletters?page=50", "/breakers",
             "/audit?since=24h", "/audit?actor=op1&since=7d"]
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console") as client:
        r = await client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', r.text)[1]
        await client.post("/login", data={"user": "op", "password": "bench-pass", "csrf": token})
        t = time.perf_counter()
        await app.state.console.warming  # the console's own warm-up, then the rest if any
        await app.state.console.dlq.catch_up(limit=10**7)
        from console import data

        await data.sms_spend(redis, keys, max_entries=10**8)
        print(f"  one-time index catch-up (dead letters + spend)     {time.perf_counter() - t:7.2f} s")
        print(f"\n{'page':48} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
        worst = 0.0
        for path in pages:
            r = await client.get(path)
            assert r.status_code == 200, (path, r.status_code)
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                r = await client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200
            times.sort()
            p95 = times[max(0, int(len(times) * 0.95) - 1)]
            worst = max(worst, times[-1])
            print(f"{path:48} {statistics.median(times):10.1f} {p95:8.1f} {times[-1]:8.1f}")
        print(f"\nslowest page render: {worst:.1f} ms (budget 300 ms)")
    seq, par = await hook_cost()
    print(f"timeline hook: {seq:.0f} µs per record awaited alone, {par:.1f} µs per record with 5,000 in flight "
          f"(fire and forget: one EVALSHA, not awaited by the request)")
    keys_left = [k async for k in redis.scan_iter(match=f"dvci:{env}:*", count=5000)]
    for i in range(0, len(keys_left), 1000):
        await redis.delete(*keys_left[i:i + 1000])
    await redis.aclose()
    print(orjson.dumps({"slowest_page_ms": round(worst, 1), "hook_us": round(seq), "hook_inflight_us": round(par, 1)})
          .decode())


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--audit", type=int, default=100_000)
    p.add_argument("--letters", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=20)
    asyncio.run(main(p.parse_args()))
