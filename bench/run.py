"""`make bench` / `make bench-quick`: send_sms as production runs it (functions-framework -> gunicorn +
uvicorn worker, WORKERS=1), Redis, the sandbox and the load generator each in its own process.
Phases: functions-framework's bare CloudEvent hello and the runtime floor (same run), latency at 250/500/1000
ev/s (open loop), throughput (closed loop) with server/Redis CPU and commands per event, a py-spy CPU split,
WORKERS=2, metrics off, the naive stack, a 3-master Redis Cluster with two workers, cold starts, the other
functions' phases (bench/postal.py, lgsp.py, signing.py). Prints one table and writes bench/results.json
(`python -m bench.autoscale` turns it into infra/autoscaling.json). Never part of `make test`."""

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

from bench.autoscale import proposal as autoscaling
from bench.chaos import free_port
from bench.profile import group_cpu_s, record, split, worker_pids
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


def wait_http(url: str, timeout: float = 30, method: str = "GET") -> float:
    """Seconds until `url` answers 200 (polling every 5 ms); with method HEAD, any HTTP answer."""
    t0 = time.perf_counter()
    import urllib.error
    import urllib.request

    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except urllib.error.HTTPError:
            if method == "HEAD":
                return time.perf_counter() - t0
            time.sleep(0.005)
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


ENV_NAME = "dev-bench"  # a dev environment: the sandboxes' published webhook secrets are accepted
RATES = (250, 500, 1000)
SKIPPED_IN_QUICK = {"metrics_off", "naive", "functions"}
PHASES = ("hello", "floor", "latency", "throughput", "profile", "workers2", "metrics_off", "naive", "cluster",
          "pipeline", "cold", "functions")


def redis_cpu_s(r: redis.Redis) -> float:
    cpu = r.info("cpu")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def handler_ms(log: Path, offset: int) -> dict[str, float]:
    """p50/p99 of the function's own `duration_ms` ("event handled" log lines written since `offset`): what
    the handler took, against what the client saw (the rest is queueing: accept, parsing, CPU contention)."""
    time.sleep(0.3)  # the log handler flushes every 50-200 ms
    durations = []
    with log.open("rb") as f:
        f.seek(offset)
        for line in f:
            if b'"event handled"' in line:
                try:
                    durations.append(float(orjson.loads(line)["duration_ms"]))
                except (ValueError, KeyError):
                    continue
    if not durations:
        return {}
    durations.sort()
    n = len(durations)
    return {"handler_p50_ms": durations[n // 2], "handler_p99_ms": durations[min(n - 1, int(n * 0.99))]}


def measured(url: str, proc: Proc, rcs: list[redis.Redis], sandbox: str | None, *args: str) -> dict[str, Any]:
    """A closed-loop run with what it cost: server CPU (every process of the server), Redis commands and
    Redis CPU per answered event."""
    before = [command_calls(r) for r in rcs]
    net0 = [r.info("stats") for r in rcs]
    rcpu0, cpu0 = sum(map(redis_cpu_s, rcs)), group_cpu_s(proc.p.pid) if proc.p else 0.0
    out = loadgen(url, *args)
    cpu1 = group_cpu_s(proc.p.pid) if proc.p else 0.0
    rcpu1 = sum(map(redis_cpu_s, rcs))
    net1 = [r.info("stats") for r in rcs]
    events = max(1, out["answered"] + out["warmup_answered"])
    delta: dict[str, int] = {}
    for r, b in zip(rcs, before, strict=True):
        for k, v in command_calls(r).items():
            if v - b.get(k, 0):
                delta[k] = delta.get(k, 0) + v - b.get(k, 0)
    for noise in ("info", "ping", "cluster|slots", "cluster", "config|resetstat"):
        delta.pop(noise, None)
    out["server_cpu_us_per_event"] = (cpu1 - cpu0) * 1e6 / events
    out["redis_cpu_us_per_event"] = (rcpu1 - rcpu0) * 1e6 / events
    out["evalsha_per_event"] = delta.get("evalsha", 0) / events
    for way in ("input", "output"):
        out[f"redis_net_{way}_bytes_per_event"] = sum(
            b[f"total_net_{way}_bytes"] - a[f"total_net_{way}_bytes"] for a, b in zip(net0, net1, strict=True)) / events
    out["redis_commands_per_event"] = {k: round(v / events, 2) for k, v in sorted(delta.items())}
    if sandbox:
        out["sandbox_messages"] = sandbox_count(sandbox)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short phases (under a minute in all)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--only", default="", help=f"comma-separated phases to run: {','.join(PHASES)}")
    ap.add_argument("--rates", default=",".join(map(str, RATES)), help="open-loop rates for the latency phase")
    a = ap.parse_args()
    q = a.quick
    dur = "3" if q else "20"
    lat_dur = "3" if q else "15"
    warm = ["--warmup", "0.5" if q else "2"]
    want = set(a.only.split(",")) if a.only else set(PHASES) - (SKIPPED_IN_QUICK if q else set())
    procs: list[Proc] = []
    conc = str(a.concurrency)
    results: dict[str, Any] = {"quick": q, "cpus": os.cpu_count(), "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                               "load_before": os.getloadavg()[0], "phases": sorted(want)}
    t_start = time.perf_counter()
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
        env = {"REDIS_URL": redis_url, "WORKERS": "1", "DVCI_ENV": ENV_NAME, "DVCI_SMS_POLICY_FILE": str(policy),
               **provider_env(sandbox), "DVCI_LOG_LEVEL": os.environ.get("DVCI_LOG_LEVEL", "INFO")}

        def serve(name: str, source: str, **extra: str) -> tuple[str, Proc]:
            port = free_port()
            proc = Proc(name, function_cmd(source, port), {**env, **extra}).start()
            procs.append(proc)
            wait_http(f"http://127.0.0.1:{port}/health/liveness" if "bench/hello" not in source
                      else f"http://127.0.0.1:{port}/", method="HEAD")
            return f"http://127.0.0.1:{port}/", proc

        def stop(proc: Proc) -> None:
            proc.stop()
            procs.remove(proc)

        # 1. what functions-framework alone allows, and our runtime's floor, back to back
        if "hello" in want:
            url, proc = serve("hello", "bench/hello/main.py")
            loadgen(url, "--duration", "1", "--warmup", "0", "--any-200")
            results["hello"] = measured(url, proc, [], None, "--duration", dur, "--concurrency", conc, "--any-200",
                                        *warm)
            stop(proc)
            print(f"functions-framework hello: {results['hello']['rate']:.0f} ev/s", flush=True)
        if "floor" in want:
            url, proc = serve("floor", "bench/floor/main.py")
            loadgen(url, "--duration", "1", "--warmup", "0")
            results["floor"] = measured(url, proc, [], None, "--duration", dur, "--concurrency", conc, *warm)
            if results["floor"]["outcomes"].get("ok", 0) != results["floor"]["answered"]:
                raise RuntimeError(f"the floor function failed: {results['floor']['outcomes']}")
            stop(proc)
            print(f"floor: {results['floor']['rate']:.0f} ev/s", flush=True)

        sms_url, sms = serve("send_sms", "functions/send_sms/main.py")
        loadgen(sms_url, "--duration", "1" if q else "3", "--warmup", "0", "--concurrency", conc)  # warm
        sandbox_count(sandbox)
        # 2. latency at fixed arrival rates, open loop, under capacity
        if "latency" in want:
            results["latency"] = {}
            for rate in [float(x) for x in a.rates.split(",")]:
                mark = sms.log.stat().st_size
                lat = loadgen(sms_url, "--mode", "open", "--rate", str(rate), "--duration", lat_dur)
                lat.update(handler_ms(sms.log, mark))
                results["latency"][str(int(rate))] = lat
                print(f"latency at {rate:.0f} ev/s: p50/p95/p99/max {lat['p50_ms']:.1f}/{lat['p95_ms']:.1f}/"
                      f"{lat['p99_ms']:.1f}/{lat['max_ms']:.0f} ms", flush=True)
            sandbox_count(sandbox)
        # 3. throughput, full pipeline, closed loop, one worker
        if "throughput" in want:
            thr = measured(sms_url, sms, [rc], sandbox, "--duration", dur, "--concurrency", conc, *warm)
            results["throughput"] = thr
            print(f"throughput: {thr['rate']:.0f} ev/s, {thr['server_cpu_us_per_event']:.0f} µs CPU/event", flush=True)
        # 4. where the CPU goes: py-spy on the worker, saturated (py-spy's own sampling costs a little)
        if "profile" in want:
            pid = worker_pids(sms.p.pid)[0] if sms.p else 0
            raw = Path(tempfile.gettempdir()) / "dvci-bench-profile.txt"
            secs = 3 if q else 10
            spy = record(pid, secs, raw)
            cpu0 = group_cpu_s(sms.p.pid) if sms.p else 0.0
            lat = loadgen(sms_url, "--duration", str(secs), "--warmup", "0", "--concurrency", conc)
            cpu1 = group_cpu_s(sms.p.pid) if sms.p else 0.0
            if spy is not None:
                _, err = spy.communicate(timeout=60)
                if spy.returncode == 0 and raw.exists():
                    per_event = (cpu1 - cpu0) * 1e6 / max(1, lat["answered"])
                    results["profile"] = {"rate": lat["rate"], "cpu_us_per_event": per_event,
                                          "split": split(raw)}
                else:
                    results["profile"] = {"error": err.decode()[-300:]}
            sandbox_count(sandbox)
        stop(sms)
        # 5. two workers on the two cores (gunicorn WORKERS=2)
        if "workers2" in want:
            url2, sms2 = serve("send_sms_w2", "functions/send_sms/main.py", WORKERS="2")
            loadgen(url2, "--duration", "1", "--warmup", "0", "--concurrency", conc)
            sandbox_count(sandbox)
            results["workers2"] = measured(url2, sms2, [rc], sandbox, "--duration", dur, "--concurrency", conc,
                                           *warm)
            stop(sms2)
            print(f"two workers: {results['workers2']['rate']:.0f} ev/s", flush=True)
        # 6. observability cost: metrics off (tracing is off in both: no exporter)
        if "metrics_off" in want:
            urlq, quiet = serve("send_sms_nometrics", "functions/send_sms/main.py", DVCI_METRICS="off")
            loadgen(urlq, "--duration", "2", "--warmup", "0", "--concurrency", conc)
            results["throughput_metrics_off"] = measured(urlq, quiet, [rc], sandbox, "--duration", dur,
                                                         "--concurrency", conc, *warm)
            stop(quiet)
            print(f"throughput, metrics off: {results['throughput_metrics_off']['rate']:.0f} ev/s", flush=True)
        # 7. the naive stack
        if "naive" in want:
            url, naive = serve("naive", "bench/naive/main.py")
            loadgen(url, "--duration", "2", "--warmup", "0", "--any-200")
            results["naive"] = loadgen(url, "--duration", dur, "--concurrency", conc, "--any-200")
            stop(naive)
            print(f"naive: {results['naive']['rate']:.0f} ev/s", flush=True)
        # 8. a 3-master Redis Cluster, two workers
        if "cluster" in want:
            results["cluster"] = cluster_phase(env, sandbox, dur, conc, warm, serve, stop)
        # 9. the reliability pipeline alone, one node vs the cluster (in this process)
        if "pipeline" in want:
            from bench.pipeline_cost import run as pipeline_cost

            results["pipeline"] = pipeline_cost(2000 if q else 10_000)
        # 10. cold starts
        if "cold" in want:
            runs = 1 if q else 5
            results["cold_start_s"] = {
                "send_sms": cold_start("functions/send_sms/main.py", env, runs),
                "dead_letter": cold_start("functions/dead_letter/main.py", env, runs),
            }
    finally:
        for p in reversed(procs):
            p.stop()
    # 11. the other functions' phases (each starts its own stack)
    if "functions" in want:
        results["functions"] = other_functions(q)
    results["elapsed_s"] = time.perf_counter() - t_start
    results["autoscaling"] = autoscaling(results)
    report(results)
    (ROOT / "bench" / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


def cluster_phase(env: dict[str, str], sandbox: str, dur: str, conc: str, warm: list[str], serve: Any,
                  stop: Any) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.cluster import RedisCluster3

    with RedisCluster3() as cluster:
        nodes = [redis.Redis(host="127.0.0.1", port=p) for p in cluster.ports]
        url, proc = serve("send_sms_cluster", "functions/send_sms/main.py", WORKERS="2", REDIS_URL=cluster.url)
        try:
            loadgen(url, "--duration", "1", "--warmup", "0", "--concurrency", conc)
            sandbox_count(sandbox)
            out = measured(url, proc, nodes, sandbox, "--duration", dur, "--concurrency", conc, *warm)
        finally:
            stop(proc)
        out["idem_keys_per_shard"] = cluster.keys_per_node(f"dvci:{ENV_NAME}:{{sms:*}}:idem")
        out["kind_keys_per_shard"] = cluster.keys_per_node(f"dvci:{ENV_NAME}:{{sms}}:*")
        out["keys_per_shard"] = {n: int(r.dbsize()) for n, r in zip(cluster.nodes, nodes, strict=True)}
        for r in nodes:
            r.close()
    print(f"cluster (3 masters, 2 workers): {out['rate']:.0f} ev/s; idempotency records per shard "
          f"{list(out['idem_keys_per_shard'].values())}", flush=True)
    return out


def other_functions(quick: bool) -> dict[str, Any]:
    """postal (create + tracking webhooks), LGSP (sync + drain), signing, the audit trail's and the console
    timeline hook's costs: each module's own phase, when present."""
    import asyncio
    import importlib

    out: dict[str, Any] = {}
    calls = {"postal": lambda m: m.run(duration_s=3.0 if quick else 10.0),
             "lgsp": lambda m: asyncio.run(m.phase(quick=quick)),
             "signing": lambda m: m.run(quick=quick),
             "audit": lambda m: asyncio.run(m.run(1000 if quick else 5000)),
             "console": lambda m: dict(zip(("timeline_hook_us", "timeline_hook_inflight_us"),
                                           asyncio.run(m.hook_cost(1000 if quick else 5000)), strict=True))}
    for name, call in calls.items():
        try:
            module = importlib.import_module(f"bench.{name}")
        except ImportError:
            continue
        t0 = time.perf_counter()
        try:
            out[name] = call(module)
        except Exception as exc:  # another team's phase failing must not lose this run's figures
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def _fmt_lat(lat: dict[str, Any]) -> str:
    return f"{lat['p50_ms']:.1f}/{lat['p95_ms']:.1f}/{lat['p99_ms']:.1f}/{lat['max_ms']:.0f} ms"


def function_rows(fns: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """One or two rows per other function's phase (their own modules measure; figures named here)."""
    rows: list[tuple[str, str, str, bool | None]] = []
    for name, res in fns.items():
        if "error" in res:
            rows.append((f"{name}: phase failed", res["error"][:30], "", False))
            continue
        try:
            if name == "postal":
                c, t = res["create_with_label"], res["tracking_webhooks"]
                rows.append(("postal_create with label (1 worker)", f"{c['rate_per_s']:.0f}/s p99 {c['p99_ms']:.0f} ms",
                             ">= 150/s", c["rate_per_s"] >= 150))
                rows.append(("postal_track webhooks (1 worker)", f"{t['rate_per_s']:.0f}/s p99 {t['p99_ms']:.0f} ms",
                             ">= 1500/s", t["rate_per_s"] >= 1500))
            elif name == "lgsp":
                d, st = res["backlog_drain"], res["steady_state"]
                rows.append((f"lgsp_sync backlog of {d['dossiers']} (portal limit {d['rate_limit_rps']:.0f} req/s)",
                             f"{d['seconds']:.1f} s, {d['calls_per_s']:.0f} calls/s", "<= limit",
                             d["calls_per_s"] <= d["rate_limit_rps"] * 1.1))
                rows.append(("lgsp_sync steady-state lag p50/p99", f"{st['lag_p50_s'] * 1000:.0f}/"
                             f"{st['lag_p99_s'] * 1000:.0f} ms", "", None))
            elif name == "signing":
                rows.append(("sign_document PAdES B-B / B-T",
                             f"{res['pades_bb_per_s']:.0f}/s / {res['pades_bt_per_s']:.0f}/s", ">= 40 / 15",
                             res["pades_bb_per_s"] >= 40 and res["pades_bt_per_s"] >= 15))
            elif name == "audit":
                rows.append(("audit entry + citizen-data encryption per event",
                             f"{res['audit_cost_per_event_us']:.0f} + {res['encryption_cost_per_event_us']:.0f} µs", "",
                             None))
            elif name == "console":
                rows.append(("console timeline hook per event (in flight)",
                             f"{res['timeline_hook_inflight_us']:.0f} µs", "", None))
        except (KeyError, TypeError):
            rows.append((f"{name} (its own phase)", "see results.json", "", None))
    return rows


def report(r: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str, bool | None]] = []
    thr, hello, floor = r.get("throughput"), r.get("hello"), r.get("floor")
    if hello:
        rows.append(("functions-framework CloudEvent hello (same run)", f"{hello['rate']:.0f} ev/s", "", None))
    if floor:
        rows.append(("runtime floor (parse, route, reply; no I/O)", f"{floor['rate']:.0f} ev/s", "", None))
        if hello:
            rows.append(("  floor / hello", f"{floor['rate'] / hello['rate']:.0%}", ">= 80%",
                         floor["rate"] / hello["rate"] >= 0.8))
    if thr:
        ok = thr["outcomes"].get("ok", 0)
        rows += [
            (f"send_sms throughput, 1 worker (closed loop, c={thr['concurrency']})", f"{thr['rate']:.0f} ev/s",
             ">= 2000", thr["rate"] >= 2000),
            ("  answered 200 accepted / sandbox messages", f"{ok} / {thr['sandbox_messages']}", "all / equal",
             ok == thr["answered"] and thr["sandbox_messages"] >= ok),
            ("  server CPU per event (all processes of the server)", f"{thr['server_cpu_us_per_event']:.0f} µs",
             "", None),
            ("  Redis per event: scripts / CPU / bytes in+out", f"{thr['evalsha_per_event']:.2f} / "
             f"{thr['redis_cpu_us_per_event']:.0f} µs / {thr.get('redis_net_input_bytes_per_event', 0):.0f}+"
             f"{thr.get('redis_net_output_bytes_per_event', 0):.0f} B", "", None),
        ]
        if floor:
            rows.append(("  full pipeline / floor", f"{thr['rate'] / floor['rate']:.0%}", "", None))
    for rate, lat in (r.get("latency") or {}).items():
        target = "p99 <= 50" if rate == "1000" else "p99 <= 10x p50"
        good = lat["p99_ms"] <= 50 if rate == "1000" else lat["p99_ms"] <= 10 * lat["p50_ms"]
        errors = sum(v for k, v in lat["outcomes"].items() if k != "ok")
        rows.append((f"latency at {rate} ev/s: p50/p95/p99/max" + (f" ({errors} errors)" if errors else ""),
                     _fmt_lat(lat), target, good and not errors))
        if "handler_p99_ms" in lat:
            rows.append(("  of which in the handler (server log): p50/p99",
                         f"{lat['handler_p50_ms']:.1f}/{lat['handler_p99_ms']:.1f} ms", "", None))
    if r.get("workers2") and thr:
        w2 = r["workers2"]
        rows.append(("send_sms, WORKERS=2 (2 cores shared with Redis, sandbox, load)", f"{w2['rate']:.0f} ev/s",
                     "", None))
        rows.append(("  scaling efficiency (2 workers / 2 x 1 worker)", f"{w2['rate'] / (2 * thr['rate']):.0%}", "",
                     None))
    if r.get("throughput_metrics_off") and thr:
        off = r["throughput_metrics_off"]["rate"]
        rows.append(("observability cost (metrics on vs off)", f"{1 - thr['rate'] / off:.1%}", "< 10%",
                     1 - thr["rate"] / off < 0.10))
    if r.get("naive") and thr:
        naive = r["naive"]["rate"]
        rows.append(("naive stack", f"{naive:.0f} ev/s", "", None))
        rows.append(("full pipeline / naive", f"{thr['rate'] / max(1, naive):.1f}x", ">= 5x",
                     thr["rate"] / max(1, naive) >= 5))
    if r.get("cluster"):
        c = r["cluster"]
        rows.append(("Redis Cluster (3 masters), WORKERS=2", f"{c['rate']:.0f} ev/s", "", None))
        rows.append(("  scripts per event / idempotency records per shard", f"{c['evalsha_per_event']:.2f} / "
                     + " ".join(str(v) for v in c["idem_keys_per_shard"].values()), "all shards",
                     all(v > 0 for v in c["idem_keys_per_shard"].values())))
    for where, pc in (r.get("pipeline") or {}).items():
        rows.append((f"pipeline alone, {where.replace('_', ' ')}: client / Redis CPU per event",
                     f"{pc['client_cpu_us_per_event']:.0f} / {pc['redis_cpu_us_per_event']:.0f} µs, "
                     f"{pc['scripts_per_event']:.0f} scripts", "", None))
    if r.get("cold_start_s"):
        cs = r["cold_start_s"]
        rows.append(("cold start send_sms / dead_letter (median)",
                     f"{cs['send_sms']:.2f} / {cs['dead_letter']:.2f} s", "<= 1.0", cs["send_sms"] <= 1.0))
    rows += function_rows(r.get("functions") or {})
    loads = [x for x in (thr, hello, floor, r.get("workers2"), *(r.get("latency") or {}).values()) if x]
    worst = max((x["loadgen_cpu_pct"] for x in loads), default=0)
    rows.append(("load generator CPU (worst phase)", f"{worst:.0f}%", "< 90% of a core", worst < 90))
    width = max(len(x[0]) for x in rows) + 2
    print(f"\n{'measure':{width}}{'value':>30}  {'target':>16}  ok")
    for name, value, target, good in rows:
        mark = "" if good is None else ("yes" if good else "NO")
        print(f"{name:{width}}{value:>30}  {target:>16}  {mark}")
    if worst >= 90:
        print("WARNING: the load generator was CPU-bound: the figures above understate the server")
    if r.get("profile", {}).get("split"):
        p = r["profile"]
        print(f"\nCPU per event, saturated ({p['rate']:.0f} ev/s under py-spy): {p['cpu_us_per_event']:.0f} µs "
              "(server processes), by the innermost frame py-spy sampled:")
        for cat, share in p["split"].items():
            print(f"  {cat:44}{share:6.1%}  {share * p['cpu_us_per_event']:6.0f} µs")
    if thr:
        print(f"\nRedis commands per event (inside scripts included): {thr['redis_commands_per_event']}")
        non_ok = {k: v for k, v in thr["outcomes"].items() if k != "ok"}
        if non_ok:
            print(f"non-accepted answers during throughput: {non_ok}")
    print(f"\n{r['cpus']} CPUs, load average {r['load_before']:.1f} before the run, {r['elapsed_s']:.0f} s in all"
          + (" (quick: short phases, noisy figures)" if r["quick"] else ""))


if __name__ == "__main__":
    sys.exit(main())
