"""`make bench` / `make bench-quick`: send_sms as production runs it (functions-framework -> gunicorn +
uvicorn worker, WORKERS=1), Redis, the sandbox and the load generator each in its own process.
Prints one table and writes bench/results.json. Never part of `make test`."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import redis

from bench.chaos import free_port
from dvci.dev import provider_env
from shared.integrations.registry import registry

ROOT = Path(__file__).resolve().parent.parent
SMS_PROVIDERS = registry("sms").names()
POLICY = f"""
order: [{", ".join(SMS_PROVIDERS)}]
providers:
""" + "".join(f"  {name}: {{tps: 100000, burst: 10000}}\n" for name in SMS_PROVIDERS) + """recipient_limits:
  transactional: {rate: 5, period_s: 3600, burst: 5}
"""


class Proc:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str] | None = None):
        self.name, self.cmd = name, cmd
        self.env = {**os.environ, **(env or {})}
        self.log = Path(tempfile.gettempdir()) / f"dvci-bench-{name}.log"
        self.p: subprocess.Popen | None = None

    def start(self) -> Proc:
        with self.log.open("wb") as out:
            self.p = subprocess.Popen(self.cmd, env=self.env, stdout=out, stderr=out, start_new_session=True)
        return self

    def stop(self) -> None:
        if self.p and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


def wait_http(url: str, timeout: float = 30) -> float:
    """Seconds until `url` answers 200 (polling every 5 ms)."""
    t0 = time.perf_counter()
    import urllib.request

    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"{url} not up after {timeout}s")


def function_cmd(source: str, port: int) -> list[str]:
    return [sys.executable, "-m", "functions_framework", "--asgi", "--signature-type", "http", "--target", "handle",
            "--source", str(ROOT / source), "--host", "127.0.0.1", "--port", str(port)]


def loadgen(url: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.loadgen", url, *args], capture_output=True, text=True,
                         cwd=ROOT, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    return orjson.loads(out.stdout.strip().splitlines()[-1])


def sandbox_count(sandbox: str) -> int:
    import urllib.request

    total = 0
    for name in SMS_PROVIDERS:
        with urllib.request.urlopen(f"{sandbox}/{name}/_sandbox/requests?log=0") as r:
            total += orjson.loads(r.read())["messages"]
        req = urllib.request.Request(f"{sandbox}/{name}/_sandbox/requests", method="DELETE")
        urllib.request.urlopen(req).close()
    return total


def command_calls(r: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in r.info("commandstats").items()}


def cold_start(source: str, env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        port = free_port()
        t0 = time.perf_counter()
        proc = Proc("cold", function_cmd(source, port), env).start()
        try:
            wait_http(f"http://127.0.0.1:{port}/health/liveness")
            times.append(time.perf_counter() - t0)
        finally:
            proc.stop()
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short phases (under a minute in all)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rate", type=float, default=1000)
    a = ap.parse_args()
    dur = "5" if a.quick else "30"
    cold_runs = 2 if a.quick else 5
    procs: list[Proc] = []
    results: dict[str, Any] = {"quick": a.quick, "cpus": os.cpu_count(), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            port = free_port()
            binary = shutil.which("redis-server", path="/usr/bin:/usr/local/bin") or shutil.which("redis-server")
            procs.append(Proc("redis", [binary or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no"]).start())
            redis_url = f"redis://127.0.0.1:{port}/0"
            time.sleep(0.3)
        rc = redis.Redis.from_url(redis_url)
        rc.ping()
        sb_port = free_port()
        sandbox = f"http://127.0.0.1:{sb_port}"
        procs.append(Proc("sandbox", [sys.executable, "-m", "dvci.cli", "sandbox", "--port", str(sb_port)]).start())
        wait_http(sandbox + "/")
        policy = Path(tempfile.mkdtemp()) / "providers.yaml"
        policy.write_text(POLICY)
        env = {"REDIS_URL": redis_url, "WORKERS": "1", "DVCI_ENV": "bench", "DVCI_SMS_POLICY_FILE": str(policy),
               **provider_env(sandbox),
               "DVCI_LOG_LEVEL": os.environ.get("DVCI_LOG_LEVEL", "INFO")}

        def serve(name: str, source: str) -> str:
            port = free_port()
            proc = Proc(name, function_cmd(source, port), env).start()
            procs.append(proc)
            wait_http(f"http://127.0.0.1:{port}/health/liveness")
            return f"http://127.0.0.1:{port}/"

        # 1. throughput, full pipeline, closed loop
        sms_url = serve("send_sms", "functions/send_sms/main.py")
        loadgen(sms_url, "--duration", "2", "--warmup", "0", "--concurrency", str(a.concurrency))  # warm
        sandbox_count(sandbox)
        before = command_calls(rc)
        thr = loadgen(sms_url, "--duration", dur, "--concurrency", str(a.concurrency))
        after = command_calls(rc)
        delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
        delta.pop("info", None)
        events = thr["answered"] + thr["warmup_answered"]
        thr["sandbox_messages"] = sandbox_count(sandbox)
        thr["evalsha_per_event"] = delta.get("evalsha", 0) / max(1, events)
        thr["redis_commands_per_event"] = {k: round(v / max(1, events), 2) for k, v in delta.items()}
        results["throughput"] = thr
        print(f"throughput: {thr['rate']:.0f} ev/s", flush=True)

        # 1b. observability cost: the same pipeline with metrics off (tracing is off in both: no exporter)
        env_quiet = {**env, "DVCI_METRICS": "off"}
        port_q = free_port()
        quiet = Proc("send_sms_nometrics", function_cmd("functions/send_sms/main.py", port_q), env_quiet).start()
        procs.append(quiet)
        wait_http(f"http://127.0.0.1:{port_q}/health/liveness")
        q_url = f"http://127.0.0.1:{port_q}/"
        loadgen(q_url, "--duration", "2", "--warmup", "0", "--concurrency", str(a.concurrency))
        results["throughput_metrics_off"] = loadgen(q_url, "--duration", dur, "--concurrency", str(a.concurrency))
        quiet.stop()
        sandbox_count(sandbox)
        print(f"throughput, metrics off: {results['throughput_metrics_off']['rate']:.0f} ev/s", flush=True)

        # 3. the floor
        floor_url = serve("floor", "bench/floor/main.py")
        loadgen(floor_url, "--duration", "2", "--warmup", "0")
        results["floor"] = loadgen(floor_url, "--duration", dur, "--concurrency", str(a.concurrency))
        if results["floor"]["outcomes"].get("ok", 0) != results["floor"]["answered"]:
            raise RuntimeError(f"the floor function failed: {results['floor']['outcomes']}")
        print(f"floor: {results['floor']['rate']:.0f} ev/s", flush=True)

        # 4. the naive stack
        naive_url = serve("naive", "bench/naive/main.py")
        loadgen(naive_url, "--duration", "2", "--warmup", "0", "--any-200")
        results["naive"] = loadgen(naive_url, "--duration", dur, "--concurrency", str(a.concurrency), "--any-200")
        print(f"naive: {results['naive']['rate']:.0f} ev/s", flush=True)

        # 4b. latency at a fixed arrival rate, open loop (last: an overloaded open loop leaves a backlog)
        lat = loadgen(sms_url, "--mode", "open", "--rate", str(a.rate), "--duration", dur)
        results["latency"] = lat
        print(f"latency: p99 {lat['p99_ms']:.1f} ms", flush=True)
        # and at half the measured capacity: the latency of a stack that is not saturated
        half = max(50.0, round(thr["rate"] / 2, -1))
        results["latency_half"] = loadgen(sms_url, "--mode", "open", "--rate", str(half), "--duration", dur)
        print(f"latency at {half:.0f} ev/s: p99 {results['latency_half']['p99_ms']:.1f} ms", flush=True)

        # 5. cold starts
        results["cold_start_s"] = {
            "send_sms": cold_start("functions/send_sms/main.py", env, cold_runs),
            "dead_letter": cold_start("functions/dead_letter/main.py", env, cold_runs),
        }
    finally:
        for p in reversed(procs):
            p.stop()
    report(results)
    (ROOT / "bench" / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


def report(r: dict[str, Any]) -> None:
    thr, lat, floor, naive = r["throughput"], r["latency"], r["floor"], r["naive"]
    ok = thr["outcomes"].get("ok", 0)
    rows = [
        (f"send_sms throughput (closed loop, c={thr['concurrency']})", f"{thr['rate']:.0f} ev/s", ">= 2000",
         thr["rate"] >= 2000),
        ("  answered 200 accepted / sandbox messages", f"{ok} / {thr['sandbox_messages']}",
         "all / equal", ok == thr["answered"] and thr["sandbox_messages"] >= ok),
        (f"latency at {lat['rate_offered']:.0f} ev/s offered: p50/p95/p99/max",
         f"{lat['p50_ms']:.1f}/{lat['p95_ms']:.1f}/{lat['p99_ms']:.1f}/{lat['max_ms']:.0f} ms", "p99 <= 50",
         lat["p99_ms"] <= 50),
        (f"latency at {r['latency_half']['rate_offered']:.0f} ev/s (half capacity): p50/p95/p99/max",
         f"{r['latency_half']['p50_ms']:.1f}/{r['latency_half']['p95_ms']:.1f}/{r['latency_half']['p99_ms']:.1f}/"
         f"{r['latency_half']['max_ms']:.0f} ms", "", None),
        ("observability cost (metrics on vs off, tracing off)",
         f"{1 - thr['rate'] / r['throughput_metrics_off']['rate']:.1%}", "< 10%",
         1 - thr["rate"] / r["throughput_metrics_off"]["rate"] < 0.10),
        ("floor (runtime, no I/O)", f"{floor['rate']:.0f} ev/s", "", None),
        ("full pipeline / floor", f"{thr['rate'] / floor['rate']:.0%}", ">= 33%", thr["rate"] / floor["rate"] >= 0.33),
        ("naive stack", f"{naive['rate']:.0f} ev/s", "", None),
        ("full pipeline / naive", f"{thr['rate'] / max(1, naive['rate']):.1f}x", ">= 5x",
         thr["rate"] / max(1, naive["rate"]) >= 5),
        ("cold start send_sms (median)", f"{r['cold_start_s']['send_sms']:.2f} s", "<= 1.0",
         r["cold_start_s"]["send_sms"] <= 1.0),
        ("cold start dead_letter (median)", f"{r['cold_start_s']['dead_letter']:.2f} s", "", None),
        ("Redis round trips (EVALSHA) per event", f"{thr['evalsha_per_event']:.2f}", "", None),
        ("load generator CPU (throughput / latency)", f"{thr['loadgen_cpu_pct']:.0f}% / {lat['loadgen_cpu_pct']:.0f}%",
         "< 90% of a core", thr["loadgen_cpu_pct"] < 90 and lat["loadgen_cpu_pct"] < 90),
    ]
    width = max(len(x[0]) for x in rows) + 2
    print(f"\n{'measure':{width}}{'value':>28}  {'target':>16}  ok")
    for name, value, target, good in rows:
        mark = "" if good is None else ("yes" if good else "NO")
        print(f"{name:{width}}{value:>28}  {target:>16}  {mark}")
    if thr["loadgen_cpu_pct"] >= 90 or lat["loadgen_cpu_pct"] >= 90:
        print("WARNING: the load generator was CPU-bound: the figures above understate the server")
    print(f"\nRedis commands per event (inside scripts included): {thr['redis_commands_per_event']}")
    non_ok = {k: v for k, v in thr["outcomes"].items() if k != "ok"}
    if non_ok:
        print(f"non-accepted answers during throughput: {non_ok}")


if __name__ == "__main__":
    sys.exit(main())
