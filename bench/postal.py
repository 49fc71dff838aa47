"""Postal bench phases for `make bench` (the lead's bench/run.py calls `run()`; `python -m bench.postal`
runs them alone): postal_create with label (carrier create + A6 PDF + S3 put per shipment; target >= 150
shipments/s per worker) and postal_track's Viettel Post webhooks (verify + StatusBook + emit to K_SINK;
target >= 1,500 updates/s per worker). Each function as production runs it (functions-framework, 1 worker),
Redis, moto S3, the carrier sandboxes and the load in separate processes (the K_SINK stand-in and the load
share this one)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
import uuid
from typing import Any

import orjson

from bench.chaos import free_port
from bench.run import Proc, function_cmd, wait_http

SECRET = "sandbox-vtp-webhook-secret"
SINK = {"n": 0}  # events postal_track emitted to the K_SINK stand-in
RECIPIENT = {"name": "Nguyễn Thị Ánh Tuyết", "phone": "0912345678", "address_line": "Số 12 ngõ 34 phố Hàng Bạc",
             "province_code": "01", "ward_code": "00097"}


def serve_sandbox(port: int) -> None:
    """The postal carrier simulators alone on `port` (`python -m bench.postal sandbox PORT`)."""
    from aiohttp import web

    from sandbox.viettelpost import ViettelpostSimulator
    from sandbox.vnpost import VnpostSimulator

    app = web.Application()
    for sim in (VnpostSimulator(), ViettelpostSimulator()):
        sim.max_log = 0
        app.add_subapp(f"/{sim.name}/", sim.app())
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _event(type_: str, data: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    headers = {"ce-specversion": "1.0", "ce-id": uuid.uuid4().hex, "ce-source": "/bench/postal", "ce-type": type_,
               "content-type": "application/json"}
    return headers, orjson.dumps(data)


async def _closed_loop(url: str, make: Any, concurrency: int, duration_s: float, ok: Any) -> dict[str, Any]:
    import aiohttp

    stats: dict[str, int] = {"ok": 0, "other": 0}
    latencies: list[float] = []
    stop = time.perf_counter() + duration_s

    async def worker(session: aiohttp.ClientSession, w: int) -> None:
        i = 0
        while time.perf_counter() < stop:
            headers, body = make(w, i)
            i += 1
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as r:
                payload = await r.read()
                if ok(r, payload):
                    stats["ok"] += 1
                    latencies.append(time.perf_counter() - t0)
                else:
                    stats["other"] += 1

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        await asyncio.gather(*(worker(s, w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    lat = sorted(latencies)
    return {**stats, "rate_per_s": round(stats["ok"] / elapsed, 1),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2) if lat else None}


async def _phases(create_url: str, track_url: str, redis_url: str, env: str, duration_s: float,
                  concurrency: int) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from shared.storage.redis import Keys

    results: dict[str, Any] = {}
    parcel = {"weight_g": 300, "contents": "Kết quả giải quyết hồ sơ"}
    run_id = uuid.uuid4().hex[:8]

    def shipment(w: int, i: int) -> tuple[dict[str, str], bytes]:
        return _event("vn.gov.dvc.postal.shipment.requested", {
            "dossier_id": f"BENCH-{run_id}-{w}-{i}", "purpose": "result_delivery", "recipient": RECIPIENT,
            "parcel": parcel, "cod_vnd": 25000})

    results["create_with_label"] = await _closed_loop(
        create_url, shipment, concurrency, duration_s,
        lambda r, b: r.status == 200 and r.headers.get("ce-type") == "vn.gov.dvc.postal.shipment.created")

    # tracking webhooks: seed Viettel Post shipments, then push a status walk for each
    r = aioredis.Redis.from_url(redis_url)
    keys = Keys(env)
    n_ship = 2000
    async with r.pipeline(transaction=False) as pipe:
        for k in range(n_ship):
            sid = f"bench{run_id}{k:06d}"
            pipe.hset(keys.key("postal", "shipment", sid), mapping={"dossier_id": f"BENCH-{k}", "purpose": "other",
                                                                     "state": "created"})
            pipe.set(keys.key("postal", "tracking", "viettelpost", f"9{run_id[:4]}{k:06d}".replace("a", "1")
                              .replace("b", "2").replace("c", "3").replace("d", "4").replace("e", "5")
                              .replace("f", "6")), sid)
        await pipe.execute()
    await r.aclose()
    numbers = [f"9{run_id[:4]}{k:06d}".replace("a", "1").replace("b", "2").replace("c", "3").replace("d", "4")
               .replace("e", "5").replace("f", "6") for k in range(n_ship)]
    walk = ["105", "200", "300", "301", "302", "303", "400", "401", "402", "403", "500", "506", "508", "501"]
    base = time.time() - 86400

    def webhook(w: int, i: int) -> tuple[dict[str, str], bytes]:
        step, ship = divmod(w + i * concurrency, n_ship)
        code = walk[step % len(walk)]
        at = time.strftime("%d/%m/%Y %H:%M:%S", time.localtime(base + step * 60 + (step // len(walk)) * 3600))
        return ({"content-type": "application/json", "authorization": SECRET},
                orjson.dumps({"DATA": {"ORDER_NUMBER": numbers[ship], "ORDER_STATUS": int(code),
                                       "ORDER_STATUSDATE": at, "STATUS_NAME": "bench", "LOCALION_CURRENTLY": "HN"}}))

    results["tracking_webhooks"] = await _closed_loop(
        track_url + "webhooks/viettelpost", webhook, concurrency, duration_s, lambda r, b: r.status == 200)
    await asyncio.sleep(0.5)
    results["tracking_webhooks"]["emitted_to_k_sink"] = SINK["n"]
    return results


def run(duration_s: float = 10.0, concurrency: int = 32, redis_url: str | None = None) -> dict[str, Any]:
    """Both postal phases; returns {"create_with_label": {...}, "tracking_webhooks": {...}, "targets": {...}}."""
    procs: list[Proc] = []
    env_name = f"bench-postal-{uuid.uuid4().hex[:6]}"
    try:
        if not redis_url:
            port = free_port()
            binary = shutil.which("redis-server", path="/usr/bin:/usr/local/bin") or "redis-server"
            procs.append(Proc("postal-redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                               "--appendonly", "no"]).start())
            redis_url = f"redis://127.0.0.1:{port}/0"
        moto_port, sandbox_port, create_port, track_port, sink_port = (free_port() for _ in range(5))
        procs.append(Proc("postal-moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                          str(moto_port)]).start())
        procs.append(Proc("postal-sandbox", [sys.executable, "-m", "bench.postal", "sandbox",
                                             str(sandbox_port)]).start())
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        env = {"REDIS_URL": redis_url, "DVCI_ENV": env_name, "WORKERS": "1", "DVCI_LOG_LEVEL": "WARNING",
               "DVCI_POSTAL_VNPOST_URL": f"{sandbox}/vnpost",
               "DVCI_POSTAL_VIETTELPOST_URL": f"{sandbox}/viettelpost/v2",
               "S3_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}", "AWS_ACCESS_KEY_ID": "bench",
               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "ap-southeast-1",
               "K_SINK": f"http://127.0.0.1:{sink_port}/"}
        procs.append(Proc("postal-create", function_cmd("functions/postal_create/main.py", create_port), env).start())
        procs.append(Proc("postal-track", function_cmd("functions/postal_track/main.py", track_port), env).start())
        wait_http(f"http://127.0.0.1:{moto_port}/moto-api/")
        import boto3

        boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], region_name="ap-southeast-1",
                     aws_access_key_id="bench", aws_secret_access_key="bench").create_bucket(
            Bucket="dvci-postal-labels", CreateBucketConfiguration={"LocationConstraint": "ap-southeast-1"})
        for fn_port in (create_port, track_port):
            wait_http(f"http://127.0.0.1:{fn_port}/health/liveness", 60)
        os.environ.setdefault("DVCI_LOG_LEVEL", "WARNING")

        async def main() -> dict[str, Any]:
            from aiohttp import web

            runner_app = web.Application()

            async def sink(request: web.Request) -> web.Response:
                await request.read()
                SINK["n"] += 1
                return web.Response(status=202)

            runner_app.router.add_post("/", sink)
            runner = web.AppRunner(runner_app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", sink_port).start()
            try:
                return await _phases(f"http://127.0.0.1:{create_port}/", f"http://127.0.0.1:{track_port}/",
                                     redis_url or "", env_name, duration_s, concurrency)
            finally:
                await runner.cleanup()

        results = asyncio.run(main())
        results["targets"] = {"create_with_label_per_s": 150, "tracking_webhooks_per_s": 1500}
        return results
    finally:
        for p in reversed(procs):
            p.stop()


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.postal")
    parser.add_argument("what", nargs="?", default="run", choices=["run", "sandbox"])
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.what == "sandbox":
        serve_sandbox(args.port)
        return
    print(orjson.dumps(run(args.duration, args.concurrency), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    cli()
