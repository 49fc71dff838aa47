"""The local broker of `dvci dev`: Knative Broker/Trigger semantics applied to the manifests' Triggers.

Delivers each event to every matching Trigger's subscriber at least once; retries 404/408/409/429/5xx
and network errors with the Trigger's backoff; dead-letters other 4xx at once and exhausted retries,
adding knativeerrordest / knativeerrorcode / knativeerrordata; publishes replies back into the broker,
decrementing `knativebrokerttl` (the hop limit). A development convenience, not a production broker.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from dvci.filters import trigger_matches
from dvci.manifests import Delivery, TriggerSpec
from dvci.spool import DeadLetterSpool
from shared.runtime.errors import InvalidEvent
from shared.runtime.events import CloudEvent, binary_headers, now_rfc3339, parse_http
from shared.runtime.http import get_session

log = logging.getLogger("dvci.broker")

RETRYABLE = frozenset((404, 408, 409, 429))
DEFAULT_TTL = 255
Sleep = Callable[[float], Awaitable[None]]


def retryable(status: int | None) -> bool:
    """Knative's rule: network errors, 404, 408, 409, 429 and 5xx are retried; other 4xx are not."""
    return status is None or status in RETRYABLE or status >= 500


@dataclass
class Attempt:
    status: int | None
    at: float
    delay_before_s: float
    error: str | None = None


@dataclass
class DeliveryRecord:
    trigger: str
    subscriber: str
    attempts: list[Attempt] = field(default_factory=list)
    # pending | delivered | replied | dead-lettered | dead-letter-spooled (kept on disk, handed over again
    # until the sink takes it) | dead-letter-failed (no sink configured)
    outcome: str = "pending"


@dataclass
class EventRecord:
    id: str
    source: str
    type: str
    received_at: float
    ttl: int
    parent: str | None = None
    data: Any = None
    deliveries: list[DeliveryRecord] = field(default_factory=list)
    replies: list[dict[str, str]] = field(default_factory=list)
    dropped: str | None = None

    def done(self) -> bool:
        return all(d.outcome not in ("pending", "dead-letter-spooled") for d in self.deliveries)


@dataclass(frozen=True)
class Route:
    trigger: TriggerSpec
    url: str
    dead_letter_url: str | None


class Broker:
    def __init__(self, routes: list[Route], *, sleep: Sleep = asyncio.sleep, max_records: int = 20_000,
                 max_inflight: int = 256, post: Callable[..., Awaitable[tuple[int | None, bytes, dict[str, str]]]]
                 | None = None, spool: DeadLetterSpool | None = None, spool_interval_s: float = 1.0):
        self.routes = routes
        self.spool = spool
        self.spool_interval_s = spool_interval_s
        self._spooled: dict[int, DeliveryRecord] = {}
        self._spool_task: asyncio.Task | None = None
        self.sleep = sleep
        self.records: OrderedDict[str, EventRecord] = OrderedDict()
        self.max_records = max_records
        self._sem = asyncio.Semaphore(max_inflight)
        self._tasks: set[asyncio.Task] = set()
        self._post = post or http_post

    # -- ingress -------------------------------------------------------------------------------
    async def ingress(self, headers: dict[str, str], body: bytes) -> EventRecord:
        """Accept an event as the broker ingress does (400 for anything that is not a CloudEvent)."""
        event = parse_http(headers, body)
        return self.publish(event)

    def publish(self, event: CloudEvent, parent: str | None = None) -> EventRecord:
        """Route `event` to every matching Trigger; deliveries run in the background."""
        ttl_raw = event.extensions.get("knativebrokerttl")
        try:
            ttl = int(ttl_raw) if ttl_raw is not None else DEFAULT_TTL
        except ValueError:
            ttl = DEFAULT_TTL
        event.extensions["knativebrokerttl"] = str(ttl)
        event.extensions.setdefault("knativearrivaltime", now_rfc3339())
        record = EventRecord(event.id, event.source, event.type, time.time(), ttl, parent,
                             event.data if not isinstance(event.data, bytes) else None)
        self._remember(record)
        if ttl <= 0:
            record.dropped = "hop limit (knativebrokerttl) reached"
            log.warning("event dropped: hop limit", extra={"ce_type": event.type, "ce_id": event.id})
            return record
        attrs = attributes(event)
        for route in self.routes:
            t = route.trigger
            if trigger_matches(attrs, t.filter_attributes, t.filters):
                delivery = DeliveryRecord(t.name, route.url)
                record.deliveries.append(delivery)
                task = asyncio.get_running_loop().create_task(self._deliver(route, event, record, delivery))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return record

    async def drain(self, timeout: float = 60.0) -> None:
        """Wait until no delivery is in flight (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - time.monotonic()))

    # -- delivery ------------------------------------------------------------------------------
    async def _deliver(self, route: Route, event: CloudEvent, record: EventRecord, rec: DeliveryRecord) -> None:
        spec: Delivery = route.trigger.delivery
        status: int | None = None
        body = b""
        for attempt in range(spec.retry + 1):
            delay = spec.backoff(attempt) if attempt else 0.0
            if delay:
                await self.sleep(delay)
            async with self._sem:
                status, body, headers = await self._post(route.url, event, spec.timeout_s)
            rec.attempts.append(Attempt(status, time.time(), delay,
                                        None if status else body.decode(errors="replace")[:200]))
            if status is not None and 200 <= status < 300:
                reply = _reply(status, headers, body)
                if reply is False or reply is True:
                    status, body = 502, b"2xx answer with a body that is not a CloudEvent"
                    rec.attempts[-1].status = 502
                    continue  # a failure, retried like a 5xx
                if not isinstance(reply, CloudEvent):
                    rec.outcome = "delivered"
                else:
                    rec.outcome = "replied"
                    reply.extensions["knativebrokerttl"] = str(record.ttl - 1)
                    record.replies.append({"id": reply.id, "type": reply.type, "source": reply.source})
                    self.publish(reply, parent=_key(record.source, record.id))
                return
            if not retryable(status):
                break
        await self._dead_letter(route, event, rec, status, body)

    async def _dead_letter(self, route: Route, event: CloudEvent, rec: DeliveryRecord, status: int | None,
                           body: bytes) -> None:
        if route.dead_letter_url is None:
            rec.outcome = "dead-letter-failed"
            log.error("no dead-letter sink: event lost", extra={"ce_type": event.type, "ce_id": event.id})
            return
        letter = CloudEvent(event.id, event.source, event.type, event.specversion, event.datacontenttype,
                            event.subject, event.time, event.dataschema, dict(event.extensions), event.data)
        letter.extensions["knativeerrordest"] = route.url
        if status is not None:
            letter.extensions["knativeerrorcode"] = str(status)
        if body:
            letter.extensions["knativeerrordata"] = base64.b64encode(body).decode()[:1024]
        for attempt in range(4):
            if attempt:
                await self.sleep(0.2 * 2 ** (attempt - 1))
            async with self._sem:
                dls_status, _, _ = await self._post(route.dead_letter_url, letter, 30.0)
            if dls_status is not None and 200 <= dls_status < 300:
                rec.outcome = "dead-lettered"
                return
        if self.spool is None:
            rec.outcome = "dead-letter-failed"
            log.error("dead-letter sink refused the event", extra={"ce_type": event.type, "ce_id": event.id})
            return
        headers = binary_headers(letter)
        letter_id = self.spool.put(route.dead_letter_url, headers, letter.data_bytes(), _key(event.source, event.id))
        self._spooled[letter_id] = rec
        rec.outcome = "dead-letter-spooled"
        log.warning("dead-letter sink refused the event; spooled to disk, handed over again until taken",
                    extra={"ce_type": event.type, "ce_id": event.id})
        self._start_spool()

    # -- the spool -----------------------------------------------------------------------------
    def _start_spool(self) -> None:
        if self.spool is not None and (self._spool_task is None or self._spool_task.done()):
            self._spool_task = asyncio.get_running_loop().create_task(self._drain_spool())

    async def _drain_spool(self) -> None:
        """Hand spooled dead letters to their sink until the spool is empty (retrying with backoff)."""
        assert self.spool is not None
        session = get_session()
        while self.spool.size():
            for item in self.spool.due():
                try:
                    async with session.post(item.url, data=item.body, headers=item.headers,
                                            timeout=aiohttp.ClientTimeout(total=30)) as resp:
                        status: int | None = resp.status
                except (aiohttp.ClientError, TimeoutError):
                    status = None
                if status is not None and 200 <= status < 300:
                    self.spool.done(item.id)
                    rec = self._spooled.pop(item.id, None)
                    if rec is not None:
                        rec.outcome = "dead-lettered"
                else:
                    self.spool.retry_later(item.id, item.tries)
            await self.sleep(self.spool_interval_s)

    def close_spool(self) -> None:
        if self._spool_task is not None:
            self._spool_task.cancel()
        if self.spool is not None:
            self.spool.close()

    def resume_spool(self) -> int:
        """Start handing over what a previous run left in the spool; returns how many letters wait."""
        if self.spool is None:
            return 0
        waiting = self.spool.size()
        if waiting:
            self._start_spool()
        return waiting

    # -- inspection ----------------------------------------------------------------------------
    def _remember(self, record: EventRecord) -> None:
        key = _key(record.source, record.id)
        self.records[key] = record
        self.records.move_to_end(key)
        while len(self.records) > self.max_records:
            self.records.popitem(last=False)

    def find(self, event_id: str, source: str | None = None) -> EventRecord | None:
        if source is not None:
            return self.records.get(_key(source, event_id))
        for record in reversed(self.records.values()):
            if record.id == event_id:
                return record
        return None

    def snapshot(self, limit: int = 100, event_type: str | None = None) -> list[dict[str, Any]]:
        out = []
        for record in reversed(self.records.values()):
            if event_type and record.type != event_type:
                continue
            out.append(asdict(record))
            if len(out) >= limit:
                break
        return out


def _key(source: str, event_id: str) -> str:
    return f"{source}\x00{event_id}"


def attributes(event: CloudEvent) -> dict[str, str]:
    attrs = {"id": event.id, "source": event.source, "type": event.type, "specversion": event.specversion}
    for name in ("subject", "datacontenttype", "dataschema", "time"):
        value = getattr(event, name)
        if value is not None:
            attrs[name] = value
    attrs.update(event.extensions)
    return attrs


def _reply(status: int, headers: dict[str, str], body: bytes) -> CloudEvent | bool | None:
    """The reply event in a 2xx answer; None for none; False for a body that is not an event."""
    if "ce-specversion" in headers or headers.get("content-type", "").startswith("application/cloudevents"):
        try:
            return parse_http(headers, body)
        except InvalidEvent:
            return False
    return None if not body else False


async def http_post(url: str, event: CloudEvent, timeout_s: float | None) -> tuple[int | None, bytes, dict[str, str]]:
    """POST `event` in binary mode; (status or None on network error, body, lower-case headers)."""
    headers = binary_headers(event)
    headers["prefer"] = "reply"
    try:
        async with get_session().post(url, data=event.data_bytes(), headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            return resp.status, await resp.read(), {k.lower(): v for k, v in resp.headers.items()}
    except (aiohttp.ClientError, TimeoutError) as exc:
        return None, repr(exc).encode(), {}
