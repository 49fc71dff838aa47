"""Prometheus metrics of every function (`GET /metrics`), prefix `dvci_`. Labels are bounded: event types
are kept only when they are the project's own (vn.gov.dvc.*, at most 64 distinct), never ids or numbers.

prometheus-client rather than the OpenTelemetry metrics SDK: a counter increment costs ~1 µs here, and
`make bench` measures the whole observability cost with metrics on against off (DVCI_METRICS=off)."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
ENABLED = os.environ.get("DVCI_METRICS", "on").lower() not in ("off", "0", "false")

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

EVENTS = Counter("dvci_events", "Events handled, by type and outcome", ["function", "type", "outcome"],
                 registry=REGISTRY)
EVENT_DURATION = Histogram("dvci_event_duration_seconds", "Time to handle one event", ["function", "type"],
                           buckets=_LATENCY, registry=REGISTRY)
PROVIDER_CALLS = Counter("dvci_provider_calls", "Calls to external providers, by result",
                         ["kind", "provider", "result"], registry=REGISTRY)
PROVIDER_DURATION = Histogram("dvci_provider_call_duration_seconds", "Provider call latency", ["kind", "provider"],
                              buckets=_LATENCY, registry=REGISTRY)
BREAKER_STATE = Gauge("dvci_breaker_state", "Breaker state last seen by this instance (0 closed, 1 half-open, 2 open)",
                      ["kind", "provider"], registry=REGISTRY)
BREAKER_TRANSITIONS = Counter("dvci_breaker_transitions", "Breaker transitions made by this instance",
                              ["kind", "provider", "to"], registry=REGISTRY)
RATE_LIMITED = Counter("dvci_rate_limited", "Requests refused by a rate limit", ["kind", "scope"], registry=REGISTRY)
IDEMPOTENCY = Counter("dvci_idempotency", "Duplicate deliveries: replayed, in progress (409), conflicting (400)",
                      ["function", "result"], registry=REGISTRY)
DEAD_LETTERS = Counter("dvci_dead_letters", "Dead letters received, by event type and last HTTP code",
                       ["type", "code"], registry=REGISTRY)
SMS_SEGMENTS = Counter("dvci_sms_segments", "SMS segments accepted by providers", ["provider", "encoding"],
                       registry=REGISTRY)
SMS_COST = Counter("dvci_sms_cost_vnd", "SMS spend in VND", ["provider"], registry=REGISTRY)
SMS_RECEIPTS = Counter("dvci_sms_receipts", "Delivery receipts, by status", ["provider", "status"], registry=REGISTRY)
SMS_RECEIPT_DELAY = Histogram("dvci_sms_receipt_delay_seconds", "Time from acceptance to delivery receipt",
                              ["provider"], buckets=(1, 5, 15, 60, 300, 900, 3600, 14400), registry=REGISTRY)
SYNC_LAG = Histogram("dvci_sync_lag_seconds", "Dossier change (changed_at) to confirmed at the target",
                     ["target"], buckets=(0.5, 1, 5, 15, 30, 60, 300, 900, 3600, 14400), registry=REGISTRY)

_known_types: set[str] = set()
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def bounded_type(ce_type: str) -> str:
    """The event type as a label: the project's own types, at most 64 of them; anything else 'other'."""
    if ce_type in _known_types:
        return ce_type
    if ce_type.startswith("vn.gov.dvc.") and len(ce_type) <= 80 and len(_known_types) < 64:
        _known_types.add(ce_type)
        return ce_type
    return "other"


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
