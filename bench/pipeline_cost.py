"""The reliability pipeline alone (admit + complete with an audit record, 64 events in flight), on one Redis
node and on a 3-master Redis Cluster, in this process: client CPU, Redis CPU, scripts and bytes per event.
`python -m bench.pipeline_cost [--n 5000]`; `make bench` runs it as its `pipeline` phase."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
REPLY = b'{"s":200,"h":{"ce-type":"vn.gov.dvc.sms.accepted"},"b":"' + b"x" * 300 + b'"}'


def _stats(nodes: list[redis.Redis]) -> tuple[float, int, int, int]:
    cpu = 0.0
    calls = rx = tx = 0
    for r in nodes:
        info = r.info("all")
        cpu += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        calls += info.get("cmdstat_evalsha", {}).get("calls", 0)
        rx += info["total_net_input_bytes"]
        tx += info["total_net_output_bytes"]
    return cpu, calls, rx, tx


async def _drive(url: str, n: int, concurrency: int = 64) -> dict[str, Any]:
    from shared.reliability.pipeline import Pipeline
    from shared.reliability.policy import BreakerPolicy, IdempotencyConfig, ProviderPolicy, RateLimit
    from shared.runtime.app import EventContext
    from shared.runtime.events import CloudEvent
    from shared.storage.cluster import ClusterClient, is_cluster_url
    from shared.storage.redis import Keys
    from shared.storage.resp import RespClient

    client = ClusterClient(url) if is_cluster_url(url) else RespClient(url)
    policies = {p: ProviderPolicy(p, RateLimit(100_000, 1.0, 10_000), BreakerPolicy()) for p in ("a", "b", "c")}
    pipe = Pipeline(client, Keys("bench-pipeline"), "sms", policies, IdempotencyConfig())
    run = time.time_ns()

    async def one(i: int) -> None:
        event = CloudEvent(id=f"{run}-{i}", source="/bench", type="t", data={"i": i})  # type: ignore[arg-type]
        ctx = EventContext(event, None, 1e12)  # type: ignore[arg-type]  # no app: the pipeline alone
        adm = await pipe.admit(ctx, ["a", "b", "c"])
        adm.result = ("a", "ok")
        adm.audit = {"kind": "sms", "provider": "a", "outcome": "accepted", "segments": 1}
        await adm.complete(REPLY)

    await asyncio.gather(*(one(-i) for i in range(1, 50)))  # warm: scripts loaded, connections open
    sem = asyncio.Semaphore(concurrency)

    async def bounded(i: int) -> None:
        async with sem:
            await one(i)

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(bounded(i) for i in range(n)))
    cpu1, t1 = time.process_time(), time.perf_counter()
    await client.close()
    return {"events": n, "client_cpu_us_per_event": (cpu1 - cpu0) * 1e6 / n, "events_per_s": n / (t1 - t0)}


def measure(url: str, nodes: list[redis.Redis], n: int) -> dict[str, Any]:
    cpu0, calls0, rx0, tx0 = _stats(nodes)
    each0 = [_stats([r])[0] for r in nodes]
    out = asyncio.run(_drive(url, n))
    cpu1, calls1, rx1, tx1 = _stats(nodes)
    total = n + 49
    out["redis_cpu_us_per_event_by_node"] = sorted(
        ((_stats([r])[0] - c0) * 1e6 / total for r, c0 in zip(nodes, each0, strict=True)), reverse=True)
    out.update(redis_cpu_us_per_event=(cpu1 - cpu0) * 1e6 / total, scripts_per_event=(calls1 - calls0) / total,
               redis_bytes_in_per_event=(rx1 - rx0) / total, redis_bytes_out_per_event=(tx1 - tx0) / total)
    return out


def run(n: int = 5000) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from bench.chaos import free_port
    from tests.cluster import RedisCluster3

    server = shutil.which("redis-server", path="/usr/bin:/usr/local/bin") or "redis-server"
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results: dict[str, Any] = {}
    try:
        single = redis.Redis(port=port)
        for _ in range(100):
            try:
                single.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        results["one_node"] = measure(f"redis://127.0.0.1:{port}/0", [single], n)
        with RedisCluster3() as cluster:
            nodes = [redis.Redis(port=p) for p in cluster.ports]
            results["cluster_3_masters"] = measure(cluster.url, nodes, n)
            results["cluster_3_masters"]["idem_keys_per_shard"] = list(
                cluster.keys_per_node("dvci:bench-pipeline:{sms:*}:idem").values())
    finally:
        proc.terminate()
        proc.wait(10)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--n", type=int, default=5000)
    print(orjson.dumps(run(p.parse_args().n), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
