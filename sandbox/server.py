"""Every simulator on one port, each under `/<provider>/` (`dvci sandbox --port 8900`).

Ports: the HTTP port is the one asked for (0: a free one); the SMTP listener takes `port + 25` unless told
otherwise (8900 -> 8925), or a free port when that one is taken, so two sandboxes side by side never
collide. `start_sandbox` returns the ports actually bound; `serve` prints them.
"""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.base import Simulator
from sandbox.smtp import SmtpSimulator

# simulators of services that are no provider of a kind (a timestamp authority, an OCSP responder...) are
# listed in SUPPORT by the kind's registry module


def simulators() -> list[Simulator]:
    """One simulator per provider in every kind's registry (shared/integrations/*/providers.py), plus SUPPORT."""
    import importlib

    from shared.integrations.registry import KINDS, all_specs, load

    support = [ref for module in KINDS.values() for ref in getattr(importlib.import_module(module), "SUPPORT", [])]
    refs = [spec.simulator for spec in all_specs() if spec.simulator] + support
    return [load(ref)() for ref in dict.fromkeys(refs)]


SMTP_OFFSET = 25  # the SMTP listener's port, from the HTTP port, when not given


async def start_smtp(sims: list[Simulator], host: str = "127.0.0.1", port: int = 8925) -> int | None:
    """Start the SMTP listener of the `smtp` simulator (its control API is on the HTTP port); its port."""
    for sim in sims:
        if isinstance(sim, SmtpSimulator):
            server: Any = await sim.start(host, port)
            sim.server = server  # type: ignore[attr-defined]
            return int(server.sockets[0].getsockname()[1])
    return None


@dataclass
class RunningSandbox:
    host: str
    port: int
    smtp_port: int | None
    sims: list[Simulator]
    runner: web.AppRunner
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def describe(self) -> str:
        names = ", ".join(s.name for s in self.sims)
        smtp = f"; SMTP on {self.host}:{self.smtp_port}" if self.smtp_port else ""
        return f"{self.url}/<provider>/ ({names}){smtp}"

    async def stop(self) -> None:
        for sim in self.sims:
            server = getattr(sim, "server", None)
            if server is not None:
                server.close()
        await self.runner.cleanup()


async def start_sandbox(host: str = "127.0.0.1", port: int = 8900, smtp_port: int | None = None, *,
                        sims: list[Simulator] | None = None, free_if_taken: bool = False) -> RunningSandbox:
    """Serve the simulators; `port` 0 or taken with `free_if_taken`: a free port. SMTP: see the module doc."""
    sims = sims if sims is not None else simulators()
    runner = web.AppRunner(build_app(sims), access_log=None, handler_args={"max_field_size": 16384})
    await runner.setup()
    try:
        bound = await _site(runner, host, port, free_if_taken)
        wanted = smtp_port if smtp_port is not None else (bound + SMTP_OFFSET if port else 0)
        try:
            smtp = await start_smtp(sims, host, wanted)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or smtp_port is not None:  # only a derived port moves
                raise
            smtp = await start_smtp(sims, host, 0)
    except BaseException:
        await runner.cleanup()
        raise
    return RunningSandbox(host, bound, smtp, sims, runner)


async def _site(runner: web.AppRunner, host: str, port: int, free_if_taken: bool) -> int:
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or not free_if_taken:
            raise
        site = web.TCPSite(runner, host, 0)
        await site.start()
    server: Any = site._server
    return int(server.sockets[0].getsockname()[1])


def build_app(sims: list[Simulator] | None = None) -> web.Application:
    app = web.Application()
    sims = sims if sims is not None else simulators()
    for sim in sims:
        app.add_subapp(f"/{sim.name}/", sim.app())

    async def index(request: web.Request) -> web.Response:
        return web.json_response({"providers": [s.name for s in sims]})

    app.router.add_get("/", index)
    return app


def serve(host: str = "127.0.0.1", port: int = 8900, smtp_port: int | None = None, *,
          sims: list[Simulator] | None = None, announce: Any = print) -> None:
    """Run until interrupted; `announce(text)` gets the line saying where each listener is."""

    async def run() -> None:
        sandbox = await start_sandbox(host, port, smtp_port, sims=sims)
        announce(f"dvci sandbox: {sandbox.describe()}")  # the ports actually bound
        try:
            await asyncio.Event().wait()
        finally:
            await sandbox.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
