"""The LGSP phase of `make bench` (functions the lead's bench/run.py calls; also `python -m bench.lgsp`):

- `backlog_drain(n, rate)`: n dossiers wait in the DVCQG outbox (an outage just ended); time until the drain
  has delivered every one at a contract limit of `rate` calls/s: seconds, dossiers/s, calls/s.
- `steady_lag(rps, seconds)`: changes arrive at `rps` with both targets up; lag (changed_at -> confirmed
  at the target) p50/p99, and how many were confirmed within the request.

The sandboxes (DVCQG, LGSP) are served in this process over real HTTP; Redis is REDIS_URL or the
embedded server; the state lives under its own DVCI_ENV namespace and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def change(dossier: str, version: int, *, step: bool = True, at: datetime | None = None) -> dict[str, Any]:
    at = at or datetime.now(UTC)
    data: dict[str, Any] = {
        "dossier_id": dossier, "version": version, "agency_code": "000.00.01.H29", "procedure_code": "1.001612",
        "procedure_name": "Cấp giấy phép xây dựng", "status": "received" if version == 1 else "processing",
        "changed_at": at.isoformat(), "received_at": at.isoformat(),
        "applicant": {"name": "Nguyễn Văn Bench", "type": "citizen"}, "summary": "bench",
        "intake_channel": "online", "result_delivery": "counter"}
    if step:
        data["step"] = {"handler_name": "Cán bộ", "handler_title": "Chuyên viên", "department": "Một cửa",
                        "action": f"Bước {version}", "started_at": at.isoformat()}
    return data


@asynccontextmanager
async def stack(rate: float, targets: str, burst: int = 10) -> AsyncIterator[Any]:
    """The sandboxes, settings for `rate`, a fresh namespace; yields (service, simulators)."""
    from aiohttp import web

    from sandbox.dvcqg import DvcqgSimulator
    from sandbox.lgsp import LgspSimulator

    sims = {"dvcqg": DvcqgSimulator(), "lgsp": LgspSimulator()}
    for sim in sims.values():
        sim.max_log = 0
    app = web.Application()
    for name, sim in sims.items():
        app.add_subapp(f"/{name}/", sim.app())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    env = f"benchlgsp{os.getpid()}{uuid.uuid4().hex[:4]}"
    saved = dict(os.environ)
    os.environ.update({
        "DVCI_DVCQG_URL": f"http://127.0.0.1:{port}/dvcqg", "DVCI_LGSP_URL": f"http://127.0.0.1:{port}/lgsp",
        "DVCI_DVCQG_RATE": str(rate), "DVCI_DVCQG_BURST": str(burst), "DVCI_LGSP_RATE": str(rate),
        "DVCI_LGSP_BURST": str(burst), "DVCI_LGSP_SYNC_TARGETS": targets, "DVCI_METRICS": "off"})
    from shared.integrations.lgsp.service import build
    from shared.storage.redis import close_clients, get_redis

    try:
        yield build(env), sims
    finally:
        redis = get_redis()
        keys = [k async for k in redis.scan_iter(match=f"dvci:{env}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await close_clients()
        from shared.integrations.httpclient import close_clients as close_http

        close_http()
        os.environ.clear()
        os.environ.update(saved)
        await runner.cleanup()


async def backlog_drain(n: int = 10_000, rate: float = 50.0, *, steps: bool = False,
                        concurrency: int = 32) -> dict[str, Any]:
    """Time to drain `n` queued dossiers to DVCQG at `rate` calls/s (first pushes: one call each, plus one
    for the progress rows when `steps`)."""
    async with stack(rate, "dvcqg") as (svc, sims):
        syncer = svc.syncer
        syncer.s.drain_concurrency = concurrency
        syncer.s.drain_wait_ms = 120_000
        sem = asyncio.Semaphore(200)

        async def put(i: int) -> None:
            async with sem:
                await syncer.enqueue("dvcqg", change(f"BENCH-{i:06d}", 1, step=steps))

        await asyncio.gather(*(put(i) for i in range(n)))
        assert (await syncer.status())[0]["queued"] == n
        started = time.perf_counter()
        while (await syncer.status())[0]["queued"]:
            await syncer.drain_target("dvcqg", budget_s=3600)
        seconds = time.perf_counter() - started
        calls = sum(sims["dvcqg"].calls.values())
        held = sims["dvcqg"].dossiers
        assert len(held) == n, f"{len(held)} of {n} delivered"
        return {"dossiers": n, "rate_limit_rps": rate, "steps": steps, "seconds": round(seconds, 2),
                "dossiers_per_s": round(n / seconds, 1), "calls": calls, "calls_per_s": round(calls / seconds, 1)}


async def steady_lag(rps: float = 20.0, seconds: float = 20.0, rate: float = 50.0) -> dict[str, Any]:
    """Changes at `rps` (each to both targets, up); lag from changed_at to confirmation at the target."""
    async with stack(rate, "dvcqg,lgsp", burst=20) as (svc, _):
        syncer = svc.syncer
        lags: list[float] = []
        states: dict[str, int] = {}
        tasks: list[asyncio.Task] = []
        versions: dict[str, int] = {}

        async def one(i: int) -> None:
            dossier = f"STEADY-{i % 200:04d}"
            versions[dossier] = versions.get(dossier, 0) + 1
            c = change(dossier, versions[dossier])
            t0 = time.time()
            for r in await syncer.sync_change(c):
                states[r["state"]] = states.get(r["state"], 0) + 1
                if r["state"] == "synced":
                    lags.append(time.time() - t0)

        interval = 1.0 / rps
        started = time.perf_counter()
        i = 0
        while time.perf_counter() - started < seconds:
            tasks.append(asyncio.get_running_loop().create_task(one(i)))
            i += 1
            await asyncio.sleep(max(0.0, started + i * interval - time.perf_counter()))
        await asyncio.gather(*tasks)
        lags.sort()

        def pct(p: float) -> float | None:
            return round(lags[min(len(lags) - 1, int(p * len(lags)))], 4) if lags else None

        return {"changes": i, "rps": rps, "targets": 2, "states": states, "lag_p50_s": pct(0.5),
                "lag_p99_s": pct(0.99), "lag_max_s": round(lags[-1], 4) if lags else None}


async def phase(quick: bool = False) -> dict[str, Any]:
    """What `make bench` reports for LGSP (quick: smaller backlog, shorter steady state)."""
    n = 1_000 if quick else 10_000
    return {"backlog_drain": await backlog_drain(n, 50.0),
            "backlog_drain_with_steps": await backlog_drain(n // 10, 50.0, steps=True),
            "steady_state": await steady_lag(20.0, 5.0 if quick else 20.0)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--drain", type=int, help="only the backlog drain of N dossiers")
    p.add_argument("--rate", type=float, default=50.0)
    args = p.parse_args()
    if args.drain:
        out = asyncio.run(backlog_drain(args.drain, args.rate))
    else:
        out = asyncio.run(phase(args.quick))
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
