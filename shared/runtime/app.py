"""FunctionApp: CloudEvent type routing, replies, error mapping, health — served by functions-framework.

    app = FunctionApp("notify")

    @app.on("vn.gov.dvc.notice.requested", NoticeRequested)
    async def notify(ctx: EventContext, req: NoticeRequested) -> Reply: ...

    handle = app.entrypoint()   # functions-framework --asgi --signature-type http --target handle
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from shared.observability import logs, metrics, tracing
from shared.runtime.bodies import BodyTooLarge, read_body, too_large_response
from shared.runtime.errors import (
    ConflictingReuse,
    DvciError,
    EventInProgress,
    InvalidEvent,
    StateUnavailable,
    UnknownEventType,
)
from shared.runtime.events import CARRIED, CloudEvent, binary_headers, derive_id, now_rfc3339, parse_http
from shared.runtime.problem import error_response
from shared.runtime.settings import LimitSettings, RuntimeSettings, runtime_settings

log = logging.getLogger("dvci.runtime")


@dataclass(slots=True)
class Reply:
    """An outcome event: `type` and `data`; id, source and carried extensions are filled in."""

    type: str
    data: BaseModel | dict[str, Any]
    subject: str | None = None


class Claim(Protocol):
    """What admission leaves on the context: completed with the reply, or released on error."""

    async def complete(self, stored_response: bytes) -> None: ...
    async def release(self, exc: BaseException) -> None: ...


@dataclass(slots=True)
class EventContext:
    """Per-request context handed to a handler."""

    event: CloudEvent
    app: FunctionApp
    deadline: float
    claim: Claim | None = None
    log_fields: dict[str, Any] = field(default_factory=dict)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


Handler = Callable[[EventContext, Any], Awaitable[Reply | None]]
Job = Callable[[EventContext], Awaitable[dict[str, Any] | None]]
PING = "dev.knative.sources.ping"
#: extensions Knative adds to an event it dead-letters (delivery.deadLetterSink)
_DEAD_LETTERED = frozenset(("knativeerrordest", "knativeerrorcode", "knativeerrordata"))


class PingData(BaseModel):
    """A PingSource tick (infra/knative): which scheduled job of the function to run."""

    job: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")
Route = Callable[[Request], Awaitable[Response]]
ReadinessCheck = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class _Registration:
    model: type[BaseModel]
    handler: Handler
    replies: dict[str, type[BaseModel]] = field(default_factory=dict)


def encode_reply(request: CloudEvent, reply: Reply, source: str) -> tuple[dict[str, str], bytes]:
    """Binary-mode headers and body of `reply` to `request` (deterministic id, carried extensions)."""
    data = reply.data.model_dump(mode="json", exclude_none=True) if isinstance(reply.data, BaseModel) \
        else reply.data
    extensions = {k: request.extensions[k] for k in CARRIED if k in request.extensions}
    extensions.update(tracing.current_context_headers())  # the reply continues the trace (when on)
    event = CloudEvent(
        id=derive_id(request.source, request.id, reply.type), source=source, type=reply.type,
        datacontenttype="application/json", subject=reply.subject, time=now_rfc3339(),
        extensions=extensions, data=data,
    )
    return binary_headers(event), orjson.dumps(data)


def stored(status: int, headers: dict[str, str], body: bytes) -> bytes:
    """Serialise a response for the idempotency record (replayed byte for byte)."""
    return orjson.dumps({"s": status, "h": headers, "b": body.decode()})


def replay(blob: bytes) -> Response:
    rec = orjson.loads(blob)
    return Response(rec["b"].encode(), status_code=rec["s"], headers=rec["h"])


class FunctionApp:
    """One deployable function: its event handlers, its plain HTTP routes, its health."""

    def __init__(self, name: str, *, settings: RuntimeSettings | None = None):
        self.name = name
        self.settings = settings or runtime_settings()
        self.limits = LimitSettings()
        self.source = f"{self.settings.source_prefix}/{name}"
        self._handlers: dict[str, _Registration] = {}
        self._routes: dict[tuple[str, str], Route] = {}
        self._readiness: list[ReadinessCheck] = []
        self._fallback: Callable[[EventContext, CloudEvent], Awaitable[Reply | None]] | None = None
        self._jobs: dict[str, Job] = {}
        self.emitted: dict[str, type[BaseModel]] = {}
        self.inflight = 0
        logs.configure(self.settings.log_level)

    # -- registration -------------------------------------------------------------------------
    def on(self, event_type: str, model: type[BaseModel], *,
           replies: dict[str, type[BaseModel]] | None = None) -> Callable[[Handler], Handler]:
        """Register `handler(ctx, data)` for CloudEvents of `event_type` whose data is `model`; `replies`
        declares the outcome events it answers with (for schemas/ and the AsyncAPI document)."""

        def register(handler: Handler) -> Handler:
            self._handlers[event_type] = _Registration(model, handler, dict(replies or {}))
            return handler

        return register

    def job(self, name: str) -> Callable[[Job], Job]:
        """Register `fn(ctx) -> counts | None` as the scheduled job `name`: run on every
        `dev.knative.sources.ping` event whose data is {"job": name} (a PingSource per job)."""

        def register(fn: Job) -> Job:
            if not self._jobs:
                self.on(PING, PingData)(self._run_job)
            self._jobs[name] = fn
            return fn

        return register

    @property
    def jobs(self) -> list[str]:
        return sorted(self._jobs)

    async def _run_job(self, ctx: EventContext, ping: PingData) -> None:
        fn = self._jobs.get(ping.job)
        if fn is None:
            raise InvalidEvent(f"{self.name} has no scheduled job {ping.job!r}; it has: {', '.join(self.jobs)}",
                               errors=[{"field": "data.job", "problem": "unknown job"}])
        ctx.log_fields["job"] = ping.job
        ctx.log_fields.update(await fn(ctx) or {})

    def emits(self, event_type: str, model: type[BaseModel]) -> None:
        """Declare an event this function emits to K_SINK outside a request (webhooks, cron)."""
        self.emitted[event_type] = model

    def catalogue(self) -> dict[str, dict[str, type[BaseModel]]]:
        """What this function takes, replies and emits: {"takes"|"replies"|"emits": {type: model}}."""
        return {"takes": {t: r.model for t, r in self._handlers.items()},
                "replies": {t: m for r in self._handlers.values() for t, m in r.replies.items()},
                "emits": dict(self.emitted)}

    def on_any(self, handler: Callable[[EventContext, CloudEvent], Awaitable[Reply | None]]) -> Callable:
        """Register a handler for every event type without its own handler (it gets the raw event)."""
        self._fallback = handler
        return handler

    def route(self, path: str, methods: tuple[str, ...] = ("POST",)) -> Callable[[Route], Route]:
        """Register a plain HTTP endpoint (webhooks) at `path`."""

        def register(fn: Route) -> Route:
            for method in methods:
                self._routes[(method, path)] = fn
            return fn

        return register

    @property
    def routes(self) -> list[tuple[str, str]]:
        """The plain HTTP endpoints registered with `route`, as sorted (method, path) pairs (docs/openapi.yaml)."""
        return sorted(self._routes)

    @property
    def takes_any(self) -> bool:
        """Whether an `on_any` handler takes every event type without its own handler (the dead-letter sink)."""
        return self._fallback is not None

    def readiness_check(self, check: ReadinessCheck) -> ReadinessCheck:
        self._readiness.append(check)
        return check

    @property
    def event_types(self) -> list[str]:
        return sorted(self._handlers)

    def model_for(self, event_type: str) -> type[BaseModel]:
        return self._handlers[event_type].model

    # -- serving -------------------------------------------------------------------------------
    def entrypoint(self) -> Callable[[Request], Awaitable[Response]]:
        """The plain async function functions-framework's `http` signature needs (`handle = ...`)."""
        _quiet_gc()

        async def handle(request: Request) -> Response:
            return await self.handle(request)

        handle.__name__ = "handle"
        return handle

    async def handle(self, request: Request) -> Response:
        """functions-framework `http` entry point: every path of the function lands here."""
        path = request.url.path
        route = self._routes.get((request.method, path))
        if route is not None:
            try:  # bounded before the route reads it (request.body() then returns what was read here)
                request._body = await read_body(request, self.limits.route_limit(path))
            except BodyTooLarge as exc:
                return too_large_response(exc, "request")
            return await route(request)
        if path == "/health/liveness":
            return Response(b'{"status":"ok"}', media_type="application/json")
        if path == "/health/readiness":
            return await self._ready()
        if path == "/metrics":
            body, content_type = metrics.exposition()
            return Response(body, media_type=content_type)
        if request.method != "POST" or path not in ("/", ""):
            return Response(status_code=404)
        self.inflight += 1
        started = time.perf_counter()
        try:
            headers: dict[str, str] = {}
            for k, v in request.scope["headers"]:
                name = k.decode("latin-1").lower()
                if name in headers and name.startswith("ce-"):  # which one would win is not for us to guess
                    return self._refuse(InvalidEvent(f"header {name} appears more than once",
                                                     errors=[{"field": name, "problem": "duplicate header"}]),
                                        started)
                headers[name] = v.decode("latin-1")
            try:
                body = await read_body(request, self.limits.event_body_bytes)
            except BodyTooLarge as exc:
                self._log(None, 413, started, None, outcome="invalid", error=exc.reason)
                self._count("other", "invalid", started)
                return too_large_response(exc, "event")
            return await self.handle_event(headers, body)
        finally:
            self.inflight -= 1

    def _refuse(self, exc: InvalidEvent, started: float) -> Response:
        response = error_response(exc)
        self._log(None, response.status_code, started, None, outcome="invalid", error=str(exc))
        self._count("other", "invalid", started)
        return response

    async def handle_event(self, headers: dict[str, str], body: bytes) -> Response:
        """Decode, validate, dispatch one CloudEvent and map its outcome to the HTTP contract."""
        started = time.perf_counter()
        try:  # the raw-event handler (the dead-letter sink) keeps too-deep data as bytes instead of refusing it
            event = parse_http(headers, body, self.limits, keep_deep=self._fallback is not None)
        except InvalidEvent as exc:
            return self._refuse(exc, started)
        with tracing.event_span(self.name, event.type, event.id, event.source, event.subject,
                                {k: v for k in ("traceparent", "tracestate") if (v := event.extensions.get(k))}):
            return await self._dispatch(event, started)

    async def _dispatch(self, event: CloudEvent, started: float) -> Response:
        ctx: EventContext | None = None
        try:
            reg = self._handlers.get(event.type)
            if reg is not None and self._fallback is not None and _DEAD_LETTERED & event.extensions.keys():
                reg = None  # another function's dead letter (a refused tick too): the sink keeps it, never runs it
            if reg is None and self._fallback is not None:
                ctx = EventContext(event, self, time.monotonic() + self.settings.request_deadline_s)
                reply = await self._fallback(ctx, event)
                return await self._complete(event, reply, ctx, started)
            if reg is None:
                raise UnknownEventType(
                    f"{self.name} does not handle events of type {event.type!r}; it handles: "
                    + ", ".join(self.event_types),
                    errors=[{"field": "type", "problem": "unknown event type"}],
                )
            data = _validate(reg.model, event)
            ctx = EventContext(event, self, time.monotonic() + self.settings.request_deadline_s)
            reply = await reg.handler(ctx, data)
            return await self._complete(event, reply, ctx, started)
        except Replayed as rep:
            self._log(event, rep.response.status_code, started, ctx, outcome="replayed")
            self._count(event.type, "replayed", started)
            if metrics.ENABLED:
                metrics.IDEMPOTENCY.labels(self.name, "replayed").inc()
            return rep.response
        except BaseException as exc:
            if ctx is not None and ctx.claim is not None:
                try:
                    await ctx.claim.release(exc)
                except Exception:  # the lease will expire: a redelivery runs again
                    log.warning("could not release claim", exc_info=True)
            if isinstance(exc, asyncio.CancelledError):
                raise
            if not isinstance(exc, DvciError):
                exc = _wrap_unexpected(exc)
            response = error_response(exc)
            outcome = _OUTCOMES.get(response.status_code, "error")
            if isinstance(exc, EventInProgress | ConflictingReuse) and metrics.ENABLED:
                result = "in_progress" if response.status_code == 409 else "conflict"
                metrics.IDEMPOTENCY.labels(self.name, result).inc()
            self._log(event, response.status_code, started, ctx, outcome=outcome, error=str(exc))
            self._count(event.type, outcome, started)
            return response

    def _count(self, ce_type: str, outcome: str, started: float) -> None:
        if metrics.ENABLED:
            label = metrics.bounded_type(ce_type)
            metrics.EVENTS.labels(self.name, label, outcome).inc()
            metrics.EVENT_DURATION.labels(self.name, label).observe(time.perf_counter() - started)

    async def _complete(self, event: CloudEvent, reply: Reply | None, ctx: EventContext,
                        started: float) -> Response:
        if reply is None:
            response = Response(status_code=202)
            blob = stored(202, {}, b"")
        else:
            out_headers, out_body = encode_reply(event, reply, self.source)
            response = Response(out_body, status_code=200, headers=out_headers)
            blob = stored(200, out_headers, out_body)
            ctx.log_fields["reply"] = reply.type
        if ctx.claim is not None:
            await ctx.claim.complete(blob)
        if reply is not None and "dossierid" in event.extensions:  # the console's dossier timeline
            _timeline(event.extensions["dossierid"], reply.type, reply.data, event.id, self.settings.env,
                      (time.perf_counter() - started) * 1000)
        outcome = reply.type.rsplit(".", 1)[-1] if reply is not None else "done"
        self._log(event, response.status_code, started, ctx, outcome=outcome)
        self._count(event.type, outcome, started)
        return response

    async def _ready(self) -> Response:
        try:
            for check in self._readiness:
                await check()
        except Exception as exc:
            return Response(orjson.dumps({"status": "unready", "reason": str(exc)}), status_code=503,
                            media_type="application/json")
        return Response(b'{"status":"ready"}', media_type="application/json")

    async def emit(self, event_type: str, data: BaseModel | dict[str, Any], *, key: str,
                   subject: str | None = None, extensions: dict[str, str] | None = None) -> CloudEvent:
        """Emit an event produced outside a request to K_SINK; `key` fixes its id (re-emits dedupe)."""
        payload = data.model_dump(mode="json", exclude_none=True) if isinstance(data, BaseModel) else data
        ext = {**(extensions or {}), **tracing.current_context_headers()}
        event = CloudEvent(id=derive_id(self.source, key, event_type), source=self.source, type=event_type,
                           subject=subject, time=now_rfc3339(), extensions=ext, data=payload)
        from shared.runtime import sink

        await sink.emit(event, self.settings)
        if "dossierid" in event.extensions:  # the console's dossier timeline
            _timeline(event.extensions["dossierid"], event_type, data, event.id, self.settings.env, None)
        return event

    def _log(self, event: CloudEvent | None, status: int, started: float, ctx: EventContext | None,
             **extra: Any) -> None:
        fields: dict[str, Any] = {"function": self.name, "status": status,
                                  "duration_ms": round((time.perf_counter() - started) * 1000, 2)}
        if event is not None:
            # a type this function handles is a known constant; any other (the dead-letter sink takes all) is
            # caller data like the id and source, redacted with them
            ce_type = event.type if event.type in self._handlers else logs.redact(event.type)
            fields.update(ce_type=ce_type, ce_id=event.id, ce_source=event.source)
            trace_id = tracing.trace_id()
            if trace_id is None and event.extensions.get("traceparent", "").count("-") >= 3:
                trace_id = event.extensions["traceparent"].split("-")[1]
            if trace_id:
                fields["trace_id"] = trace_id
        if ctx is not None:
            fields.update(ctx.log_fields)
        fields.update(extra)
        log.log(logging.WARNING if status >= 500 else logging.INFO, "event handled", extra=fields)


_OUTCOMES = {400: "invalid", 409: "in_progress", 429: "rate_limited", 503: "unavailable"}


def _timeline(dossier_id: str, event_type: str, data: Any, event_id: str, env: str,
              duration_ms: float | None) -> None:
    """One fire-and-forget Redis command per outcome event of a dossier (shared/observability/timeline.py);
    guarded: the timeline never fails or slows an event."""
    try:
        from shared.observability import timeline
        from shared.storage.redis import Keys, get_fast_redis

        if not timeline.enabled():
            return
        provider, status = timeline.describe(data)
        timeline.schedule(get_fast_redis(), Keys(env), dossier_id, event_type, provider,
                          status or event_type.rsplit(".", 1)[-1], event_id=event_id, duration_ms=duration_ms)
    except Exception:
        log.debug("timeline hook failed", exc_info=True)


class Replayed(Exception):
    """Raised by admission when a completed record exists: answer with the stored response."""

    def __init__(self, blob: bytes):
        super().__init__("replayed")
        self.response = replay(blob)


def _validate(model: type[BaseModel], event: CloudEvent) -> BaseModel:
    if event.data is None:
        raise InvalidEvent(f"{event.type} requires data ({model.__name__})",
                           errors=[{"field": "data", "problem": "required"}])
    if isinstance(event.data, bytes):
        raise InvalidEvent(f"{event.type} data must be JSON, got {event.datacontenttype}",
                           errors=[{"field": "datacontenttype", "problem": "must be application/json"}])
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        errors = [{"field": "data." + ".".join(str(p) for p in err["loc"]) if err["loc"] else "data",
                   "problem": err["msg"]} for err in exc.errors()]
        summary = "; ".join(f"{e['field']}: {e['problem']}" for e in errors[:5])
        raise InvalidEvent(f"{event.type} data is invalid: {summary}", errors=errors) from None


def _wrap_unexpected(exc: BaseException) -> DvciError:
    import redis.exceptions as rex  # local: only on the error path

    if isinstance(exc, rex.ConnectionError | rex.TimeoutError | OSError):
        return StateUnavailable(f"state store unreachable: {type(exc).__name__}")
    log.error("unexpected error", exc_info=exc)
    return DvciError(f"unexpected {type(exc).__name__}", retry_after=1)


def _quiet_gc() -> None:
    """Tail latency (perf round 2, bench/gcprobe.py): full collections rescanned every object imported at
    start-up (~60,000: pydantic, Starlette, the providers) and paused a worker 20-130 ms every second or two
    at 1,000 ev/s: that was the p99. What exists once the function module is imported lives as long as the
    process: freeze it out of the collector (before gunicorn forks: fewer copy-on-write pages too), and let
    the young generation grow larger between collections. `DVCI_GC_FREEZE=0` turns it off (to compare)."""
    import gc
    import os

    global _gc_quiet
    if _gc_quiet or os.environ.get("DVCI_GC_FREEZE", "1") in ("0", "false", "off"):
        return
    _gc_quiet = True  # once per process: a test session builds many apps, frozen garbage is never freed
    gc.collect()
    gc.freeze()
    gc.set_threshold(7_000, 20, 20)


_gc_quiet = False
