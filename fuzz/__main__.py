"""`python -m fuzz [--seconds 600]` (`make fuzz`, FUZZ_SECONDS): every fuzzer, time-boxed, one summary.

  1. property tests (tests/test_fuzz.py: every event model and webhook of every function, in-process) — 40%
  2. byte harnesses (fuzz/targets.py: CloudEvent HTTP parser, Viettel SOAP replies, XAdES input, receipt,
     tracking, signing-callback and SES parsers) under atheris, or hypothesis when atheris is missing — 35%
  3. schemathesis against docs/openapi.yaml over real function processes (fuzz/api.py) — 25%
Exit 1 when any finds something; inputs and logs under $DVCI_FUZZ_DIR (default $TMPDIR/dvci-fuzz)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fuzz.api import FUNCTIONS, workdir  # noqa: E402
from fuzz.targets import SEEDS, TARGETS  # noqa: E402

PROPERTY_TESTS = 11  # 7 functions' events + 4 functions' webhooks (tests/test_fuzz.py)


def run_properties(seconds: float) -> dict[str, Any]:
    env = {**os.environ, "DVCI_FUZZ_SECONDS": str(max(1.0, seconds / PROPERTY_TESTS)), "DVCI_FUZZ_EXAMPLES": "100"}
    env.pop("REDIS_URL", None) if not os.environ.get("REDIS_URL") else None
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-p", "no:logging",
           str(ROOT / "tests" / "test_fuzz.py"), "-k", "ends_as or webhooks"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    (workdir() / "properties.log").write_text(proc.stdout + proc.stderr)
    lines = re.findall(r"^\.?(\w+(?: webhooks)?: \d+ examples.*)$", proc.stdout, re.M)
    examples = sum(int(n) for n in re.findall(r": (\d+) examples", proc.stdout))
    failed = re.findall(r"^FAILED (.*)$", proc.stdout, re.M)
    return {"examples": examples, "findings": failed, "lines": lines, "rc": proc.returncode}


def _atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_bytes(seconds: float) -> dict[str, Any]:
    engine = "atheris" if _atheris() else "hypothesis"
    out: dict[str, Any] = {"engine": engine, "targets": {}, "findings": []}
    stop = time.monotonic() + seconds
    for i, name in enumerate(TARGETS):  # what is left, shared by the targets left (a start costs a few s)
        share = max(3, int((stop - time.monotonic()) / (len(TARGETS) - i)) - (3 if engine == "atheris" else 0))
        if engine == "atheris":
            res = _atheris_target(name, share)
        else:
            res = _hypothesis_target(name, share)
        out["targets"][name] = res
        if res.get("finding"):
            out["findings"].append(f"{name}: {res['finding']}")
    out["executions"] = sum(r.get("runs", 0) for r in out["targets"].values())
    return out


def _atheris_target(name: str, seconds: int) -> dict[str, Any]:
    corpus = workdir() / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(SEEDS.get(name, [])):
        (corpus / f"seed-{i}").write_bytes(seed)
    crashes = workdir() / "crashes"
    crashes.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "fuzz.atheris_run", name, f"-max_total_time={seconds}", "-max_len=8192",
           f"-artifact_prefix={crashes}/{name}-", "-print_final_stats=1", str(corpus)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
    log = proc.stdout + proc.stderr
    (workdir() / f"atheris-{name}.log").write_text(log)
    runs = re.findall(r"Done (\d+) runs", log) or re.findall(r"stat::number_of_executed_units: (\d+)", log)
    cov = re.findall(r"cov: (\d+)", log)
    res: dict[str, Any] = {"runs": int(runs[-1]) if runs else 0, "cov": int(cov[-1]) if cov else None}
    if proc.returncode != 0:
        exc = re.findall(r"=== Uncaught Python exception: ===\n([^\n]*)", log)
        saved = re.findall(r"Test unit written to (\S+)", log)
        res["finding"] = (exc[-1] if exc else f"exit {proc.returncode}") + (f" (input: {saved[-1]})" if saved else "")
    return res


def _hypothesis_target(name: str, seconds: int) -> dict[str, Any]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    target = TARGETS[name]
    seeds = SEEDS.get(name, [b""])
    inputs = st.one_of(st.sampled_from(seeds), st.binary(max_size=2048),
                       st.tuples(st.sampled_from(seeds), st.binary(max_size=64), st.integers(0, 4096)).map(
                           lambda t: t[0][: t[2]] + t[1] + t[0][t[2]:]))
    runs = 0

    @settings(max_examples=500, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(inputs)
    def prop(data: bytes) -> None:
        nonlocal runs
        runs += 1
        target(data)

    stop = time.monotonic() + seconds
    try:
        while time.monotonic() < stop:
            prop()
    except Exception as exc:  # the shrunk input is in the message hypothesis prints
        return {"runs": runs, "finding": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return {"runs": runs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS", 600)))
    p.add_argument("--only", default="properties,bytes,api")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    parts = {"properties": 0.40, "bytes": 0.35, "api": 0.25}
    total = sum(v for k, v in parts.items() if k in only)
    budget = {k: args.seconds * v / total for k, v in parts.items() if k in only}
    started = time.monotonic()
    findings: list[str] = []
    if "properties" in budget:
        res = run_properties(budget["properties"])
        print(f"properties: {res['examples']} examples in {len(res['lines'])} properties, "
              f"{len(res['findings'])} failing (log: {workdir() / 'properties.log'})")
        for line in res["lines"]:
            print("  " + line)
        findings += [f"property {f}" for f in res["findings"]]
        if res["rc"] not in (0, 1):
            findings.append(f"property tests: pytest exit {res['rc']}")
    if "bytes" in budget:
        res = run_bytes(budget["bytes"])
        print(f"byte harnesses ({res['engine']}): {res['executions']} executions over {len(res['targets'])} targets")
        for name, r in res["targets"].items():
            print(f"  {name}: {r.get('runs', 0)} runs" + (f", cov {r['cov']}" if r.get("cov") else "")
                  + (f", FINDING {r['finding']}" if r.get("finding") else ""))
        findings += res["findings"]
    if "api" in budget:
        from fuzz import api

        result = asyncio.run(api.run(budget["api"], FUNCTIONS))
        cases = sum(r.get("test_cases") or 0 for r in result.values())
        print(f"schemathesis: {cases} test cases over {len(result)} functions")
        for folder, r in result.items():
            print(f"  {folder}: " + (r["error"] if "error" in r else
                                     f"{r['operations']} operations, {r.get('test_cases')} cases, "
                                     f"{r['failures']} failing"))
            if r.get("failures") or r.get("error"):
                findings.append(f"schemathesis {folder}: {r.get('failures') or r.get('error')} "
                                f"(log: {workdir() / f'schemathesis-{folder}.log'})")
    print(f"fuzz: {time.monotonic() - started:.0f} s, {len(findings)} finding(s)")
    for f in findings:
        print("  FINDING " + f)
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
