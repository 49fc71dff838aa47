"""Per-event CPU split of a running worker: py-spy samples its stacks while the load generator drives it;
each sample goes to the category of its innermost frame we can name (HTTP server, CloudEvent parsing,
validation, Redis client, provider call, reply, logs, metrics, event loop...)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# innermost-frame file fragments -> category (first match wins; order matters)
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("logs", ("/logging/", "shared/observability/logs", "shared/observability/redact")),
    ("metrics", ("prometheus_client", "shared/observability/metrics")),
    ("tracing/timeline", ("opentelemetry", "shared/observability/")),
    ("validation (pydantic)", ("pydantic", "/models.py")),
    ("JSON (orjson/json)", ("orjson", "/json/")),
    ("CloudEvent parsing", ("cloudevents", "shared/runtime/events")),
    ("Redis client (RESP, cluster)", ("shared/storage/", "hiredis", "/redis/")),
    ("reliability pipeline", ("shared/reliability/",)),
    ("provider call (HTTP client)", ("httpx", "httpcore", "aiohttp", "h11/_", "shared/integrations/sms/viettel",
                                     "shared/integrations/sms/vnpt", "shared/integrations/sms/mobifone",
                                     "shared/integrations/http", "shared/egress")),
    ("SMS service (content, routing, numbers)", ("shared/integrations/", "phonenumbers")),
    ("runtime (routing, reply)", ("shared/runtime/", "functions/")),
    ("functions-framework + Starlette", ("functions_framework", "starlette")),
    ("HTTP server (uvicorn, httptools)", ("uvicorn", "httptools", "gunicorn")),
    ("security (sealing, digests)", ("shared/security/", "cryptography", "hashlib", "hmac")),
    ("event loop (asyncio/uvloop)", ("asyncio/", "uvloop")),
    ("garbage collection", ("<gc>",)),
]


def worker_pids(group_leader: int) -> list[int]:
    """The processes of a server's process group that are not the gunicorn master (the workers)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group_leader and int(d.name) != group_leader:
            pids.append(int(d.name))
    return pids or [group_leader]


def group_cpu_s(group_leader: int) -> float:
    """User + system CPU seconds of every process in the group (the master and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group_leader:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def record(pid: int, seconds: float, out: Path, rate: int = 250) -> subprocess.Popen | None:
    """Start py-spy on `pid` (returns the process; None when py-spy is missing or not allowed)."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not spy:
        return None
    return subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-r", str(rate),
                             "--format", "raw", "-o", str(out), "--nonblocking", "--gil"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def categorize(frame: str) -> str | None:
    for name, needles in CATEGORIES:
        if any(n in frame for n in needles):
            return name
    return None


def split(raw: Path) -> dict[str, float]:
    """{category: share of samples} from py-spy's raw (collapsed) output."""
    counts: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        cat = next((c for c in map(categorize, reversed(frames)) if c), "other")
        counts[cat] = counts.get(cat, 0) + int(n)
        total += int(n)
    return {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])} if total else {}
