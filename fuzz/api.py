"""schemathesis against docs/openapi.yaml, one real function process at a time (tests/procs.py FunctionServer,
functions-framework as production runs it), with the sandboxes and moto up in this process.

    python -m fuzz.api [--seconds 120] [--functions send_sms,dead_letter]

Checks: not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
response_schema_conformance. Prints one line per function (operations, test cases, failures) and returns the
failures; reports (JUnit) under the fuzz work directory."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance")
FUNCTIONS = ["send_sms", "send_email", "dead_letter", "postal_track", "lgsp_sync", "postal_create"]


def workdir() -> Path:
    path = Path(os.environ.get("DVCI_FUZZ_DIR", Path(tempfile.gettempdir()) / "dvci-fuzz"))
    path.mkdir(parents=True, exist_ok=True)
    return path


async def _sandboxes() -> Any:
    """The provider sandboxes and moto, as tests/conftest.py starts them (its environment is imported)."""
    import boto3
    from aiohttp import web
    from moto.server import ThreadedMotoServer

    from sandbox.server import build_app, simulators, start_smtp
    from tests import conftest

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=conftest.MOTO_PORT, verbose=False)
    moto.start()
    boto3.client("ses", endpoint_url=conftest.MOTO).verify_email_identity(
        EmailAddress="no-reply@dichvucong.example.vn")
    conftest.ensure_bucket("dvci-attachments")
    sims = list(simulators())
    runner = web.AppRunner(build_app(sims))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", conftest.SANDBOX_PORT).start()
    await start_smtp(sims, port=conftest.SMTP_PORT)
    return runner, moto


async def run(seconds: float, functions: list[str], examples: int = 0) -> dict[str, dict[str, Any]]:
    import yaml

    from dvci import openapi
    from shared.storage.redis import embedded_url
    from tests.procs import FunctionServer

    doc = yaml.safe_load(openapi.DOC.read_text())
    runner, moto = await _sandboxes()
    redis_url = os.environ.get("REDIS_URL") or embedded_url()
    out: dict[str, dict[str, Any]] = {}
    share = max(5.0, seconds / max(1, len(functions)))
    try:
        for folder in functions:
            spec = workdir() / f"openapi-{folder}.json"
            spec.write_text(json.dumps(openapi.operations_for(doc, folder)))
            server = FunctionServer(folder, env={"REDIS_URL": redis_url})
            try:
                await server.start()
            except RuntimeError as exc:
                out[folder] = {"error": f"did not start: {str(exc)[-300:]}"}
                continue
            junit = workdir() / f"schemathesis-{folder}.xml"
            cmd = [str(Path(sys.executable).parent / "st"), "run", str(spec), "--url", server.url.rstrip("/"),
                   "--checks", CHECKS, "--max-time", str(int(share)), "--continue-on-failure",
                   "--request-timeout", "15", "--report", "junit", "--report-junit-path", str(junit),
                   "--no-color", "--suppress-health-check", "all", "--generation-allow-x00", "true"]
            if examples:
                cmd += ["--max-examples", str(examples)]
            proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, cwd=workdir(),
                                                        stderr=asyncio.subprocess.STDOUT)
            stdout, _ = await proc.communicate()
            server.stop()
            text = stdout.decode(errors="replace")
            (workdir() / f"schemathesis-{folder}.log").write_text(text)
            out[folder] = {"rc": proc.returncode, **_summary(junit, text)}
    finally:
        await runner.cleanup()
        moto.stop()
    return out


def _summary(junit: Path, text: str) -> dict[str, Any]:
    import re
    import xml.etree.ElementTree as ET

    cases = failures = 0
    if junit.exists():
        root = ET.parse(junit).getroot()
        for suite in root.iter("testsuite"):
            cases += int(suite.get("tests", 0))
            failures += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    generated = sum(int(n) for n in re.findall(r"(\d+) generated", text)) or None
    tail = [line for line in text.splitlines() if line.strip()][-3:]
    return {"operations": cases, "failures": failures, "test_cases": generated, "tail": tail}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz.api")
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--functions", default=",".join(FUNCTIONS))
    p.add_argument("--examples", type=int, default=0)
    args = p.parse_args(argv)
    result = asyncio.run(run(args.seconds, args.functions.split(","), args.examples))
    for folder, r in result.items():
        print(f"schemathesis {folder}: {r}")
    return 1 if any(r.get("failures") or r.get("error") for r in result.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
