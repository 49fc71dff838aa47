"""OpenTelemetry tracing, set up once per process from the standard OTEL_* variables.

With no exporter configured (no OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_TRACES_EXPORTER), tracing is off and
nothing of OpenTelemetry is imported: the hot path pays one boolean test. When on, a trace follows the
event: the request's CloudEvents `traceparent`/`tracestate` extensions are the parent, the span carries the
CloudEvents semantic-convention attributes, and replies and K_SINK events carry the span's context.
Span attributes never hold citizen data (no phone numbers, addresses, ids of people).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

_state: dict[str, Any] = {"on": None, "tracer": None, "propagator": None}


def enabled() -> bool:
    on = _state["on"]
    if on is None:
        exporter = os.environ.get("OTEL_TRACES_EXPORTER", "")
        on = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                  or exporter not in ("", "none"))
        if on:
            _setup_otlp()
        _state["on"] = on
    return bool(on)


def _setup_otlp() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    install(BatchSpanProcessor(OTLPSpanExporter()))


def install(processor: Any, service_name: str | None = None) -> None:
    """Install a tracer provider with `processor` (tests pass a SimpleSpanProcessor(InMemorySpanExporter))."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    resource = Resource.create({"service.name": service_name or os.environ.get("OTEL_SERVICE_NAME", "dvci")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    _state.update(on=True, tracer=provider.get_tracer("dvci"), propagator=TraceContextTextMapPropagator(),
                  provider=provider)


def disable() -> None:
    _state.update(on=False, tracer=None)


@contextlib.contextmanager
def event_span(function: str, ce_type: str, ce_id: str, ce_source: str, ce_subject: str | None,
               carrier: dict[str, str]) -> Iterator[Any]:
    """The span of one event handled, continuing the trace of `carrier` (traceparent/tracestate)."""
    if not enabled():
        yield None
        return
    from opentelemetry.trace import SpanKind

    ctx = _state["propagator"].extract(carrier)
    attrs = {"cloudevents.event_id": ce_id, "cloudevents.event_source": ce_source,
             "cloudevents.event_type": ce_type, "cloudevents.event_spec_version": "1.0",
             "faas.trigger": "pubsub", "faas.name": function}
    if ce_subject:
        attrs["cloudevents.event_subject"] = ce_subject
    with _state["tracer"].start_as_current_span(f"{ce_type} process", context=ctx, kind=SpanKind.CONSUMER,
                                                attributes=attrs) as span:
        yield span


@contextlib.contextmanager
def span(name: str, kind: str = "internal", **attributes: Any) -> Iterator[Any]:
    """A child span (provider calls: kind="client"; Redis steps)."""
    if not enabled():
        yield None
        return
    from opentelemetry.trace import SpanKind

    k = SpanKind.CLIENT if kind == "client" else SpanKind.INTERNAL
    with _state["tracer"].start_as_current_span(name, kind=k, attributes=attributes) as s:
        yield s


def current_context_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current span, for an outgoing event; {} when off."""
    if not enabled():
        return {}
    out: dict[str, str] = {}
    _state["propagator"].inject(out)
    return out


def trace_id() -> str | None:
    if not enabled():
        return None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
