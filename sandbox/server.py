"""Every simulator on one port, each under `/<provider>/` (`dvci sandbox --port 8900`)."""

from __future__ import annotations

from aiohttp import web

from sandbox.base import Simulator
from sandbox.mobifone import MobifoneSimulator
from sandbox.viettel import ViettelSimulator
from sandbox.vnpt import VnptSimulator


def simulators() -> list[Simulator]:
    return [ViettelSimulator(), VnptSimulator(), MobifoneSimulator()]


def build_app(sims: list[Simulator] | None = None) -> web.Application:
    app = web.Application()
    sims = sims if sims is not None else simulators()
    for sim in sims:
        app.add_subapp(f"/{sim.name}/", sim.app())

    async def index(request: web.Request) -> web.Response:
        return web.json_response({"providers": [s.name for s in sims]})

    app.router.add_get("/", index)
    return app


def serve(host: str = "127.0.0.1", port: int = 8900) -> None:
    web.run_app(build_app(), host=host, port=port, access_log=None, print=None,
                handler_args={"max_field_size": 16384})
