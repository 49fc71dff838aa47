"""Stacks side by side: `dvci sandbox --port P` and `dvci dev --port P` bind no fixed port (they derive
theirs from P, or take free ones, and say which); `dvci dev` keeps to DVCI_ENV; a failed start leaves no
function process behind."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.conftest import ROOT, TEST_ENV, free_port

pytestmark = pytest.mark.slow
LINE = re.compile(r"dvci sandbox: http://127\.0\.0\.1:(\d+)/<provider>/ \((.*)\); SMTP on 127\.0\.0\.1:(\d+)")


async def _smtp_banner(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()


async def _providers(port: int) -> list[str]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/") as r:
        assert r.status == 200
        return (await r.json())["providers"]


def _listen(port: int) -> socket.socket | None:
    """Hold `port` (as another program would); None when something already holds it."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    s.listen()
    return s


def _gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)  # the process group: the function process and anything it started
    except ProcessLookupError:
        return True
    return False


async def test_two_sandboxes_side_by_side_from_the_cli():
    dvci = [sys.executable, "-c", "import sys; from dvci.cli import main; sys.exit(main())"]
    procs: list[subprocess.Popen] = []
    try:
        seen = []
        for port in (free_port(), free_port()):
            proc = subprocess.Popen([*dvci, "sandbox", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)
            procs.append(proc)
            assert proc.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
            m = LINE.search(line)
            assert m, line
            http, smtp = int(m[1]), int(m[3])
            assert http == port and smtp != 8925
            seen.append((http, smtp))
        (h1, s1), (h2, s2) = seen
        assert len({h1, s1, h2, s2}) == 4
        for http, smtp in seen:
            assert "smtp" in await _providers(http)
            assert (await _smtp_banner(smtp)).startswith(b"220 ")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def _port_with_free_smtp(offset: int) -> int:
    for _ in range(50):
        port = free_port()
        probe = _listen(port + offset)
        if probe is not None:
            probe.close()
            return port
    raise AssertionError("no port P with P + offset free")


async def test_sandbox_smtp_port_is_derived_and_moves_when_taken():
    from sandbox.server import SMTP_OFFSET, start_sandbox

    port = _port_with_free_smtp(SMTP_OFFSET)
    first = await start_sandbox(port=port)
    try:
        assert (first.port, first.smtp_port) == (port, port + SMTP_OFFSET)
        other = _port_with_free_smtp(SMTP_OFFSET)
        holder = _listen(other + SMTP_OFFSET)  # something else holds the second one's derived SMTP port
        assert holder is not None
        try:
            second = await start_sandbox(port=other)
            try:
                assert second.port == other and second.smtp_port not in (None, other + SMTP_OFFSET)
                assert (await _smtp_banner(second.smtp_port)).startswith(b"220 ")  # type: ignore[arg-type]
            finally:
                await second.stop()
            # an explicit SMTP port is kept to: taken is an error, not a silent move
            with pytest.raises(OSError):
                await start_sandbox(port=0, smtp_port=other + SMTP_OFFSET)
        finally:
            holder.close()
    finally:
        await first.stop()


def _manifests(tmp_path: Path) -> Path:
    """The base manifests for send-sms and dead-letter only (the functions under test here)."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    for name in ("broker.yaml", "config.yaml", "send-sms.yaml", "dead-letter.yaml"):
        shutil.copy(ROOT / "infra" / "knative" / "base" / name, folder / name)
    return folder


async def test_dev_start_failure_stops_every_function_process(tmp_path, monkeypatch):
    from dvci.client import STATE_FILE
    from dvci.dev import DevStack

    monkeypatch.chdir(tmp_path)
    STATE_FILE.parent.mkdir()
    STATE_FILE.write_text('{"another": "stack"}')  # another stack's state in this folder stays
    port = free_port()
    holder = _listen(port)  # the broker's port is taken: start fails after the functions were started
    assert holder is not None
    stack = DevStack(port=port, redis_url="redis://127.0.0.1:1/0", manifests_dir=_manifests(tmp_path))
    try:
        with pytest.raises(OSError):
            await stack.start()
    finally:
        holder.close()
    pids = [fp.proc.pid for fp in stack.functions.values() if fp.proc]
    assert len(pids) == 2
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert all(_gone(pid) for pid in pids), "function processes left running after a failed start"
    assert all(fp.proc and fp.proc.returncode is not None for fp in stack.functions.values())
    # the sandbox and its SMTP listener were released too
    for released in (stack.sandbox_port, stack.smtp_port):
        assert released is not None
        again = _listen(released)
        assert again is not None
        again.close()
    assert STATE_FILE.read_text() == '{"another": "stack"}'


async def test_dev_stack_keeps_to_dvci_env_and_takes_free_ports_when_its_own_are_taken(redis, tmp_path,
                                                                                       monkeypatch):
    from dvci.client import STATE_FILE
    from dvci.dev import SANDBOX_OFFSET, DevStack
    from shared.storage.redis import resolve_url

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVCI_ENV", f"{TEST_ENV}-second")
    port = free_port()
    holder = _listen(port + SANDBOX_OFFSET)  # another stack's sandbox (or anything) on the derived port
    stack = DevStack(port=port, redis_url=resolve_url(), manifests_dir=_manifests(tmp_path), ping_interval_s=3600)
    try:
        await stack.start()
        assert stack.env == f"{TEST_ENV}-second"
        state = orjson.loads(STATE_FILE.read_bytes())
        assert state["env"] == f"{TEST_ENV}-second"
        assert stack.sandbox_port != port + SANDBOX_OFFSET and state["sandbox"].endswith(f":{stack.sandbox_port}")
        assert stack.sandbox_port is not None and stack.smtp_port is not None
        assert "vnpt" in await _providers(stack.sandbox_port)
        assert stack.smtp_port != 8925 and stack.moto_port not in (None, 8926)
        assert (await _smtp_banner(stack.smtp_port)).startswith(b"220 ")
        sms = stack.functions["send-sms"]
        assert sms.proc is not None
        environ = Path(f"/proc/{sms.proc.pid}/environ").read_bytes().split(b"\0")
        assert f"DVCI_ENV={TEST_ENV}-second".encode() in environ
        assert f"DVCI_EMAIL_SMTP_PORT={stack.smtp_port}".encode() in environ
    finally:
        if holder is not None:
            holder.close()
        await stack.stop()
    assert not STATE_FILE.exists()
    for fp in stack.functions.values():
        assert fp.proc is not None and _gone(fp.proc.pid)


def test_dev_cli_defaults_bind_no_fixed_sandbox_port():
    from dvci.cli import build_parser

    dev = build_parser().parse_args(["dev", "--port", "9080"])
    sandbox = build_parser().parse_args(["sandbox", "--port", "9900"])
    assert (dev.sandbox_port, dev.smtp_port, sandbox.smtp_port) == (None, None, None)
