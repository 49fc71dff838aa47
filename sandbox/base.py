"""The base of every provider simulator: the control API (faults, request log) and fault injection.

    POST   /<provider>/_sandbox/faults    {"error_rate", "status", "latency_ms", "timeout_rate",
                                           "reset_rate", "malformed_rate", "count"}
    DELETE /<provider>/_sandbox/faults
    GET    /<provider>/_sandbox/requests  {"requests": [...], "by_reference": {...},
                                           "messages_by_reference": {...}}
    DELETE /<provider>/_sandbox/requests
    POST   /<provider>/_sandbox/receipts  {"delay_ms", "success_rate", "callback_url", "carrier"}
    POST   /<provider>/_sandbox/receipts/send  {"reference", "status", "carrier", "part", "parts"}
"""

from __future__ import annotations

import abc
import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    error_rate: float = 0.0
    status: int = 503
    latency_ms: float = 0.0
    timeout_rate: float = 0.0
    reset_rate: float = 0.0
    malformed_rate: float = 0.0
    count: int | None = None
    hang_s: float = 30.0

    @classmethod
    def parse(cls, obj: Any) -> Faults:
        if not isinstance(obj, dict):
            raise ValueError("faults must be a JSON object")
        unknown = set(obj) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        faults = cls(**obj)
        for name in ("error_rate", "timeout_rate", "reset_rate", "malformed_rate"):
            if not 0.0 <= float(getattr(faults, name)) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        return faults


@dataclass
class ReceiptPolicy:
    """How the simulated network reports deliveries: after `delay_ms`, `success_rate` delivered."""

    delay_ms: float = 2000
    success_rate: float = 1.0
    callback_url: str | None = None
    carrier: str | None = None
    secret: str = "sandbox-dlr-secret"


class Fault(Exception):
    """Raised by a provider handler to answer with a fault instead."""


class Simulator(abc.ABC):
    """Subclasses register provider routes in `routes()` and call `self.accept(reference, ...)`."""

    name = "base"

    def __init__(self, rng: random.Random | None = None):
        self.faults: Faults | None = None
        self.requests: list[dict[str, Any]] = []
        self.by_reference: Counter[str] = Counter()
        self.messages: dict[str, dict[str, Any]] = {}
        self.rng = rng or random.Random()
        self.max_log = 200_000
        self.receipts = ReceiptPolicy()
        self.receipts_sent: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task] = set()

    # -- wiring --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/_sandbox/faults", self._set_faults)
        app.router.add_delete("/_sandbox/faults", self._clear_faults)
        app.router.add_get("/_sandbox/requests", self._get_requests)
        app.router.add_delete("/_sandbox/requests", self._clear_requests)
        app.router.add_post("/_sandbox/receipts", self._set_receipts)
        app.router.add_post("/_sandbox/receipts/send", self._send_receipt)
        for method, path, handler in self.routes():
            app.router.add_route(method, path, self._wrap(handler))
        return app

    @abc.abstractmethod
    def routes(self) -> list[tuple[str, str, Handler]]:
        """(method, path, handler) of the provider's own API."""

    # -- faults --------------------------------------------------------------------------------
    def _take_fault(self) -> Faults | None:
        f = self.faults
        if f is None:
            return None
        if f.count is not None:
            if f.count <= 0:
                self.faults = None
                return None
            f.count -= 1
        return f

    def _wrap(self, handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            f = self._take_fault()
            if f is None:
                return await handler(request)
            if f.latency_ms:
                await asyncio.sleep(f.latency_ms / 1000)
            roll = self.rng.random
            if f.reset_rate and roll() < f.reset_rate:
                self.log({"fault": "reset", "path": request.path})
                if request.transport is not None:
                    request.transport.abort()
                raise web.HTTPServiceUnavailable()
            if f.error_rate and roll() < f.error_rate:
                self.log({"fault": f"status:{f.status}", "path": request.path})
                return web.Response(status=f.status, text=f"sandbox fault: HTTP {f.status}")
            response = await handler(request)
            if f.timeout_rate and roll() < f.timeout_rate:
                self.log({"fault": "timeout-after-receipt", "path": request.path})
                await asyncio.sleep(f.hang_s)
                return response
            if f.malformed_rate and roll() < f.malformed_rate:
                self.log({"fault": "malformed", "path": request.path})
                return web.Response(status=200, body=b"<<<not a valid reply", content_type="text/xml")
            return response

        return wrapped

    # -- the request log -----------------------------------------------------------------------
    def log(self, entry: dict[str, Any]) -> None:
        entry.setdefault("at", time.time())
        if len(self.requests) < self.max_log:
            self.requests.append(entry)

    def receive(self, reference: str | None, entry: dict[str, Any]) -> None:
        """Record a provider request as received (before it is validated)."""
        if reference:
            self.by_reference[reference] += 1
        self.log({"reference": reference, **entry})

    def accept(self, reference: str, message: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Accept a message once per reference: (the stored message, True if it was a duplicate)."""
        existing = self.messages.get(reference)
        if existing is not None:
            return existing, True
        message = {"message_id": f"{self.name}-{len(self.messages) + 1:08d}", "accepted_at": time.time(),
                   **message}
        self.messages[reference] = message
        self._schedule_receipt(reference, message)
        return message, False

    # -- delivery receipts ---------------------------------------------------------------------------
    def _schedule_receipt(self, reference: str, message: dict[str, Any]) -> None:
        if not self.receipts.callback_url and not self.pull_receipts:
            return
        status = "delivered" if self.rng.random() < self.receipts.success_rate else "failed"
        task = asyncio.get_running_loop().create_task(self._later(reference, message, status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _later(self, reference: str, message: dict[str, Any], status: str) -> None:
        await asyncio.sleep(self.receipts.delay_ms / 1000)
        await self.deliver_receipt(reference, message, status, self.receipts.carrier, 1, 0)

    pull_receipts = False  # providers without callbacks keep receipts to be pulled instead

    async def deliver_receipt(self, reference: str, message: dict[str, Any], status: str, carrier: str | None,
                              part: int, parts: int) -> int | None:
        """Push one receipt to the callback (signed), or keep it for a pull; returns the callback's status."""
        import aiohttp
        import orjson

        from shared.security.webhooks import WebhookAuth, signed_headers

        payload = self.receipt_payload(reference, message, status, carrier, part, parts)
        self.receipts_sent.append({"reference": reference, "status": status, "payload": payload})
        if self.pull_receipts or not self.receipts.callback_url:
            return None
        body = orjson.dumps(payload)
        headers = {"content-type": "application/json", **signed_headers(WebhookAuth(self.receipts.secret), body)}
        try:
            async with aiohttp.ClientSession() as s, s.post(self.receipts.callback_url, data=body,
                                                            headers=headers) as r:
                return r.status
        except aiohttp.ClientError:
            return None

    def receipt_payload(self, reference: str, message: dict[str, Any], status: str, carrier: str | None,
                        part: int, parts: int) -> dict[str, Any]:
        return {"reference": reference, "status": status}

    async def _set_receipts(self, request: web.Request) -> web.Response:
        body = await request.json()
        for k, v in body.items():
            if k not in ReceiptPolicy.__dataclass_fields__:
                return web.json_response({"title": "invalid receipts", "detail": f"unknown field {k}", "status": 400},
                                         status=400, content_type="application/problem+json")
            setattr(self.receipts, k, v)
        return web.json_response({"receipts": asdict(self.receipts) | {"secret": "***"}})

    async def _send_receipt(self, request: web.Request) -> web.Response:
        body = await request.json()
        message = self.messages.get(body.get("reference", ""))
        if message is None:
            return web.json_response({"title": "unknown reference", "status": 404}, status=404,
                                     content_type="application/problem+json")
        status = await self.deliver_receipt(body["reference"], message, body.get("status", "delivered"),
                                            body.get("carrier"), int(body.get("part", 1)), int(body.get("parts", 0)))
        return web.json_response({"callback_status": status})

    # -- control API ---------------------------------------------------------------------------
    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            self.faults = Faults.parse(await request.json())
        except (ValueError, TypeError) as exc:
            return web.json_response({"title": "invalid faults", "detail": str(exc), "status": 400},
                                     status=400, content_type="application/problem+json")
        return web.json_response({"faults": asdict(self.faults)})

    async def _clear_faults(self, request: web.Request) -> web.Response:
        self.faults = None
        return web.json_response({"faults": None})

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.json_response({
            "requests": self.requests if request.query.get("log", "1") != "0" else [],
            "by_reference": dict(self.by_reference),
            "messages_by_reference": {ref: 1 for ref in self.messages},
            "received": sum(self.by_reference.values()), "messages": len(self.messages),
        })

    async def _clear_requests(self, request: web.Request) -> web.Response:
        self.requests.clear()
        self.by_reference.clear()
        self.messages.clear()
        self.receipts_sent.clear()
        return web.json_response({"cleared": True})
