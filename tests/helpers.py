"""Test helpers: CloudEvents encoded by the official SDK (cloudevents 1.x)."""

from __future__ import annotations

import random
import uuid
from typing import Any

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

SMS_REQUESTED = "vn.gov.dvc.sms.send.requested"


def sdk_event(data: Any, type_: str = SMS_REQUESTED, *, id_: str | None = None, source: str = "/dvc/core/test",
              **extensions: str) -> CloudEvent:
    attrs = {"type": type_, "source": source, "id": id_ or str(uuid.uuid4()), "datacontenttype": "application/json",
             **extensions}
    return CloudEvent(attrs, data)


def binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    headers, body = to_binary(event)
    return dict(headers), body


def structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    headers, body = to_structured(event)
    return dict(headers), body


def random_number() -> str:
    """A valid Vietnamese mobile number, different each call (recipient limits apply per number)."""
    return random.choice(["091", "094", "096", "097", "098", "090", "093", "088", "086", "032"]) + \
        f"{random.randrange(10**7):07d}"


def sms(to: str | None = None, text: str = "Ho so cua ban da duoc tiep nhan.", **kw: Any) -> dict[str, Any]:
    return {"to": to or random_number(), "text": text, **kw}


class Receiver:
    """A local HTTP endpoint (K_SINK, a broker ingress) that keeps every POST and answers `status`.

    `async with Receiver() as r:` -> `r.url`; `r.got` holds (lower-cased headers, body) in order."""

    def __init__(self, status: int = 202):
        self.status = status
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.url = ""
        self._runner: Any = None

    @property
    def headers(self) -> list[dict[str, str]]:
        return [h for h, _ in self.got]

    def json(self) -> list[dict[str, Any]]:
        import orjson

        return [{"headers": h, "data": orjson.loads(b)} for h, b in self.got]

    async def __aenter__(self) -> Receiver:
        from aiohttp import web

        from tests.conftest import free_port

        async def keep(request: web.Request) -> web.Response:
            self.got.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
            return web.Response(status=self.status)

        app = web.Application()
        app.router.add_post("/", keep)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
