"""`python -m bench.gcprobe <module> args...`: run a module (functions_framework) with every garbage
collection timed; each process (gunicorn forks workers: the hooks are inherited) writes
{generation: [count, total_ms, max_ms]} to $DVCI_GC_PROBE_DIR/gc-<pid>.json at exit and
after every full collection."""

from __future__ import annotations

import atexit
import gc
import os
import runpy
import sys
import time
from pathlib import Path

import orjson

_stats: dict[int, list[float]] = {0: [0, 0.0, 0.0], 1: [0, 0.0, 0.0], 2: [0, 0.0, 0.0]}
_t0 = [0.0]


def _hook(phase: str, info: dict) -> None:
    if phase == "start":
        _t0[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _t0[0]) * 1000
    s = _stats[info["generation"]]
    s[0] += 1
    s[1] += ms
    s[2] = max(s[2], ms)
    if info["generation"] == 2 or _stats[0][0] % 5 == 0:  # workers may leave with os._exit
        _dump()


def _dump() -> None:
    folder = Path(os.environ.get("DVCI_GC_PROBE_DIR", "/tmp"))
    (folder / f"gc-{os.getpid()}.json").write_bytes(orjson.dumps({"frozen": gc.get_freeze_count(),
                                                                  "stats": _stats}, option=orjson.OPT_NON_STR_KEYS))


def main() -> None:
    gc.callbacks.append(_hook)
    atexit.register(_dump)
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
