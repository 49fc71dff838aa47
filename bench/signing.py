"""The signing phase of `make bench` (call `run()`; `python -m bench.signing [--quick]` prints it alone).

PAdES with the key in SoftHSM2, on a one-page PDF, one worker (one process, one event loop, one token
session at a time), the TSA/OCSP sandboxes in their own process:
- B-B signatures/s (target >= 40/s per worker), B-T signatures/s (target >= 15/s, local TSA),
- resident memory sampled over 1,000 B-B signatures (should be flat: first vs last quarter).
The signer's certificate is checked (OCSP) once, then cached (DVCI_SIGN_CERT_CHECK_TTL_S), as in service.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _serve_sandbox(port: int, pki_dir: str) -> None:
    os.environ["DVCI_SIGN_PKI_DIR"] = pki_dir
    from aiohttp import web

    from sandbox.ocsp import OcspSimulator
    from sandbox.server import build_app
    from sandbox.tsa import TsaSimulator

    web.run_app(build_app([TsaSimulator(), OcspSimulator()]), host="127.0.0.1", port=port, access_log=None,
                print=None)


def _wait(url: str, timeout: float = 20.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


async def _measure(pki_dir: str, sandbox: str, n_bb: int, n_bt: int, n_rss: int) -> dict[str, Any]:
    import logging

    from shared.integrations.signature import pades
    from shared.integrations.signature.samples import sample_pdf
    from shared.integrations.signature.service import SigningService
    from shared.integrations.signature.settings import SigningSettings
    from shared.runtime.http import close_sessions
    from shared.storage.redis import Keys

    for name in ("pyhanko", "pyhanko_certvalidator", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    settings = SigningSettings(pki_dir=pki_dir, tsa_url=f"{sandbox}/tsa/")
    service = SigningService(settings, None, Keys("bench"), None, None, {})  # type: ignore[arg-type]
    pool = service.tokens()
    pdf = sample_pdf()

    async def sign(level: str) -> bytes:
        async with pool.session() as session:
            signer = await pool.signer(session, "seal")
            await service.checker().check(signer.signing_cert, "hsm")
            out, _field = await pades.sign_pdf(pdf, signer, pades.SignOptions(level=level),
                                               timestamper=service.timestamper() if level != "B-B" else None)
            return out

    async def rate(level: str, n: int) -> tuple[float, float]:
        await sign(level)  # warm: session, certificate check, pyHanko's timestamp size probe
        t0 = time.perf_counter()
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            await sign(level)
            lat.append(time.perf_counter() - t)
        lat.sort()
        return n / (time.perf_counter() - t0), lat[len(lat) // 2] * 1000

    try:
        bb, bb_ms = await rate("B-B", n_bb)
        bt, bt_ms = await rate("B-T", n_bt)
        samples = []
        for i in range(n_rss):
            await sign("B-B")
            if i % max(1, n_rss // 20) == 0:
                samples.append(rss_mib())
        samples.append(rss_mib())
    finally:
        pool.close()
        await close_sessions()
    q = max(1, len(samples) // 4)
    first, last = sum(samples[:q]) / q, sum(samples[-q:]) / q
    return {"pades_bb_per_s": round(bb, 1), "pades_bb_median_ms": round(bb_ms, 1),
            "pades_bt_per_s": round(bt, 1), "pades_bt_median_ms": round(bt_ms, 1),
            "rss_signatures": n_rss, "rss_first_quarter_mib": round(first, 1),
            "rss_last_quarter_mib": round(last, 1), "rss_growth_mib": round(last - first, 1),
            "targets": {"pades_bb_per_s": 40, "pades_bt_per_s": 15}}


def run(quick: bool = False) -> dict[str, Any]:
    """Make a throw-away test PKI, serve its TSA/OCSP in a child process, measure in this one."""
    from shared.integrations.signature import pki

    port = _free_port()
    sandbox = f"http://127.0.0.1:{port}"
    pki_dir = str(Path(tempfile.mkdtemp(prefix="dvci-bench-pki-")) / "pki")
    pki.init(pki_dir, base_url=sandbox)
    child = subprocess.Popen([sys.executable, "-m", "bench.signing", "--serve-sandbox", str(port), pki_dir],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait(f"{sandbox}/")
        n = (50, 20, 200) if quick else (300, 150, 1000)
        return asyncio.run(_measure(pki_dir, sandbox, *n))
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(10)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.signing")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--serve-sandbox", nargs=2, metavar=("PORT", "PKI_DIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_sandbox:
        _serve_sandbox(int(args.serve_sandbox[0]), args.serve_sandbox[1])
        return 0
    result = run(args.quick)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
