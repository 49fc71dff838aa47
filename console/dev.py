"""The console inside `dvci dev`: served in the stack's process (uvicorn on its event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import Any


def free_or(port: int) -> int:
    """`port` when it can be bound, else a free one."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


@dataclass
class RunningConsole:
    port: int
    server: Any
    task: asyncio.Task[Any]
    login: tuple[str | None, str | None]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, 10)


async def start_console(port: int, redis_url: str, env: str, broker_url: str,
                        s3_endpoint_url: str | None = None) -> RunningConsole:
    import uvicorn

    from console.app import create_app
    from console.cli import local_accounts
    from console.settings import ConsoleSettings

    login = local_accounts()
    app = create_app(redis_url=redis_url, env=env, settings=ConsoleSettings(broker_url=broker_url,
                                                                                audit_s3_endpoint_url=s3_endpoint_url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # the stack owns signals
    task = asyncio.get_running_loop().create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    if task.done():
        task.result()  # raises why it could not start
    return RunningConsole(port, server, task, login)
