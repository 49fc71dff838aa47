"""What the postal carrier simulators share (sandbox/vnpost.py, sandbox/viettelpost.py): orders kept once
per client order number, tracking events, an auto-progress mode and the postal control API:

    POST /<carrier>/_sandbox/track   {tracking_number, carrier_status, at?, description?, location?}
         add one carrier event (pushed to the webhook, or put in the feed); `at` RFC 3339 (default now)
    POST /<carrier>/_sandbox/config  {auto_progress: bool, step_ms, prices: {standard, express},
                                      invalid_numbers: bool, callback_url, webhook_secret,
                                      lose_answers: {"CreateOrder": n, ...}}
         `lose_answers`: the next n requests to that endpoint (-1: all) are processed but their answer
         never comes (a timeout after the carrier acted), unlike the generic faults, which hit every path
    GET  /<carrier>/_sandbox/orders  {orders: [{reference, tracking_number, status, events}]}
"""

from __future__ import annotations

import abc
import asyncio
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from sandbox.base import Simulator

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def problem(title: str, status: int = 400) -> web.Response:
    return web.json_response({"title": title, "status": status}, status=status, content_type="application/problem+json")


class PostalSimulator(Simulator):
    progress: tuple[str, ...] = ()  # carrier codes auto-progress walks through, created -> delivered
    picked_up_from = 0  # index in `progress` from which an order can no longer be cancelled
    pickup_codes: frozenset[str] = frozenset()

    def __init__(self, **kw: Any):
        super().__init__(**kw)
        self.prices = {"standard": 22000, "express": 38000}
        self.auto_progress = False
        self.step_ms = 1000.0
        self.invalid_numbers = False
        self.callback_url: str | None = None
        self.webhook_secret = "sandbox-vtp-webhook-secret"
        self.by_tracking: dict[str, str] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.serial = 0
        self.pushes: list[dict[str, Any]] = []
        self.lose_answers: dict[str, int] = {}
        self.hang_s = 5.0

    def _wrap(self, handler: Any) -> Any:
        inner = super()._wrap(handler)

        async def wrapped(request: web.Request) -> web.StreamResponse:
            response = await inner(request)
            endpoint = request.path.rsplit("/", 1)[-1]
            left = self.lose_answers.get(endpoint, 0)
            if left:
                self.lose_answers[endpoint] = left - 1 if left > 0 else left
                self.log({"fault": "answer-lost", "path": endpoint})
                await asyncio.sleep(self.hang_s)
            return response

        return wrapped

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/_sandbox/track", self._track)
        app.router.add_post("/_sandbox/config", self._config)
        app.router.add_get("/_sandbox/orders", self._orders)
        return app

    def reset(self) -> None:
        """Back to the defaults (tests)."""
        self.faults = None
        self.requests.clear()
        self.by_reference.clear()
        self.messages.clear()
        self.by_tracking.clear()
        self.events.clear()
        self.pushes.clear()
        self.prices = {"standard": 22000, "express": 38000}
        self.auto_progress, self.step_ms, self.invalid_numbers, self.callback_url = False, 1000.0, False, None
        self.lose_answers = {}

    # -- orders ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def new_tracking_number(self) -> str:
        """The carrier's next tracking number (S10 for VietnamPost)."""

    def create_order(self, reference: str, fields: dict[str, Any], fee: int) -> tuple[dict[str, Any], bool]:
        """The order for `reference`, created once (True when it existed already)."""
        existing = self.messages.get(reference)
        if existing is not None:
            return existing, True
        self.serial += 1
        number = self.new_tracking_number()
        order, _ = self.accept(reference, {"reference": reference, "tracking_number": number, "fee": fee,
                                           "status": self.progress[0], "cancelled": False, **fields})
        self.by_tracking[number] = reference
        self.events[number] = []
        self.add_event(number, self.progress[0], time.time())
        if self.auto_progress:
            self._spawn(self._advance(number))
        return order, False

    def cancellable(self, order: dict[str, Any]) -> bool:
        return not order["cancelled"] and not any(e["code"] in self.pickup_codes for e in
                                                  self.events.get(order["tracking_number"], []))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _advance(self, number: str) -> None:
        for code in self.progress[1:]:
            await asyncio.sleep(self.step_ms / 1000)
            order = self.messages.get(self.by_tracking.get(number, ""))
            if order is None or order["cancelled"]:
                return
            await self.report(number, code, time.time())

    # -- events ------------------------------------------------------------------------------------
    def add_event(self, number: str, code: str, at: float, description: str = "", location: str = "") -> dict[str, Any]:
        event = {"code": str(code), "at": at, "description": description, "location": location}
        self.events.setdefault(number, []).append(event)
        ref = self.by_tracking.get(number)
        if ref and ref in self.messages:
            self.messages[ref]["status"] = str(code)
        return event

    async def report(self, number: str, code: str, at: float, description: str = "", location: str = "") -> Any:
        """A carrier event: recorded, then published the carrier's way (feed or webhook push)."""
        event = self.add_event(number, code, at, description, location)
        return await self.publish(number, event)

    async def publish(self, number: str, event: dict[str, Any]) -> Any:
        return None

    @staticmethod
    def local(at: float, fmt: str = "%d/%m/%Y %H:%M:%S") -> str:
        return datetime.fromtimestamp(at, VN).strftime(fmt)

    # -- control API ---------------------------------------------------------------------------------
    async def _track(self, request: web.Request) -> web.Response:
        body = await request.json()
        number = str(body.get("tracking_number") or "")
        if number not in self.by_tracking:
            return problem("unknown tracking number", 404)
        at = body.get("at")
        when = datetime.fromisoformat(at).timestamp() if at else time.time()
        result = await self.report(number, str(body["carrier_status"]), when, str(body.get("description") or ""),
                                   str(body.get("location") or ""))
        return web.json_response({"tracking_number": number, "published": result})

    async def _config(self, request: web.Request) -> web.Response:
        body = await request.json()
        for key, value in body.items():
            if key == "prices":
                self.prices.update({k: int(v) for k, v in value.items()})
            elif key in ("auto_progress", "step_ms", "invalid_numbers", "callback_url", "webhook_secret",
                         "lose_answers", "hang_s"):
                setattr(self, key, value)
            else:
                return problem(f"unknown config field {key}")
        return web.json_response({"auto_progress": self.auto_progress, "step_ms": self.step_ms, "prices": self.prices,
                                  "invalid_numbers": self.invalid_numbers, "callback_url": self.callback_url})

    async def _orders(self, request: web.Request) -> web.Response:
        return web.json_response({"orders": [
            {"reference": ref, "tracking_number": o["tracking_number"], "status": o["status"],
             "cancelled": o["cancelled"], "events": self.events.get(o["tracking_number"], [])}
            for ref, o in self.messages.items()]})
