"""Every simulator on one port, each under `/<provider>/` (`dvci sandbox --port 8900`)."""

from __future__ import annotations

from aiohttp import web

from sandbox.base import Simulator
from sandbox.mobifone import MobifoneSimulator
from sandbox.smtp import SmtpSimulator
from sandbox.viettel import ViettelSimulator
from sandbox.vnpt import VnptSimulator


def simulators() -> list[Simulator]:
    return [ViettelSimulator(), VnptSimulator(), MobifoneSimulator(), SmtpSimulator()]


async def start_smtp(sims: list[Simulator], host: str = "127.0.0.1", port: int = 8925) -> None:
    """Start the SMTP listener of the `smtp` simulator (its control API is on the HTTP port)."""
    for sim in sims:
        if isinstance(sim, SmtpSimulator):
            await sim.start(host, port)


def build_app(sims: list[Simulator] | None = None) -> web.Application:
    app = web.Application()
    sims = sims if sims is not None else simulators()
    for sim in sims:
        app.add_subapp(f"/{sim.name}/", sim.app())

    async def index(request: web.Request) -> web.Response:
        return web.json_response({"providers": [s.name for s in sims]})

    app.router.add_get("/", index)
    return app


def serve(host: str = "127.0.0.1", port: int = 8900, smtp_port: int = 8925) -> None:
    sims = simulators()
    app = build_app(sims)

    async def smtp(app: web.Application) -> None:
        await start_smtp(sims, host, smtp_port)

    app.on_startup.append(smtp)
    web.run_app(app, host=host, port=port, access_log=None, print=None, handler_args={"max_field_size": 16384})
