"""Tracing continues the event's trace into replies and K_SINK events; metrics move; /metrics parses;
alert rules and the dashboard name real metrics; logs carry no citizen data."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from shared.observability import metrics, tracing
from shared.observability.logs import JsonFormatter
from tests.helpers import binary, sdk_event, sms

ROOT = Path(__file__).resolve().parent.parent
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans():
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing.install(SimpleSpanProcessor(exporter), "send-sms-test")
    yield exporter
    tracing.disable()


async def test_trace_continues_from_request_into_reply_and_provider_spans(send_sms, sandbox, spans):
    number = "0987 654 321"
    h, b = binary(sdk_event(sms(to=number), traceparent=PARENT, tracestate="dvc=core"))
    resp = await send_sms.post("/", headers=h, content=b)
    assert resp.status_code == 200
    _version, trace_id, span_id, _flags = resp.headers["ce-traceparent"].split("-")
    assert trace_id == "0af7651916cd43dd8448eb211c80319c" and span_id != "b7ad6b7169203331"
    finished = {s.name: s for s in spans.get_finished_spans()}
    event_span = finished["vn.gov.dvc.sms.send.requested process"]
    assert format(event_span.context.span_id, "016x") == span_id
    assert format(event_span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert event_span.attributes["cloudevents.event_type"] == "vn.gov.dvc.sms.send.requested"
    assert event_span.attributes["cloudevents.event_id"] == h["ce-id"]
    assert event_span.attributes["cloudevents.event_source"] == "/dvc/core/test"
    for name in ("reliability admit", "POST viettel", "reliability complete"):
        child = finished[name]
        assert child.context.trace_id == event_span.context.trace_id
        assert child.parent.span_id == event_span.context.span_id
    assert finished["POST viettel"].attributes["http.response.status_code"] == 200
    values = " ".join(str(v) for s in finished.values() for v in s.attributes.values())
    assert "987654321" not in values and "Ho so" not in values  # no citizen data in spans


async def test_k_sink_event_continues_the_trace(spans):
    from shared.runtime import FunctionApp
    from shared.runtime.settings import RuntimeSettings
    from tests.helpers import Receiver

    async with Receiver() as sink:
        fn = FunctionApp("send-sms", settings=RuntimeSettings(K_SINK=sink.url))
        with tracing.event_span("send-sms", "x.dlr", "1", "/carrier", None, {"traceparent": PARENT}):
            await fn.emit("vn.gov.dvc.sms.delivery.updated", {"status": "delivered"}, key="k")
    assert sink.headers[0]["ce-traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_move_with_a_scripted_sequence(send_sms, sandbox):
    before = {
        "accepted": sample("dvci_events_total", function="send-sms", type="vn.gov.dvc.sms.send.requested",
                           outcome="accepted"),
        "failed": sample("dvci_events_total", function="send-sms", type="vn.gov.dvc.sms.send.requested",
                         outcome="failed"),
        "replayed": sample("dvci_idempotency_total", function="send-sms", result="replayed"),
        "invalid": sample("dvci_events_total", function="send-sms", type="other", outcome="invalid"),
        "ok": sample("dvci_provider_calls_total", kind="sms", provider="viettel", result="ok"),
        "seg": sample("dvci_sms_segments_total", provider="viettel", encoding="ucs2"),
        "cost": sample("dvci_sms_cost_vnd_total", provider="viettel"),
        "hist": sample("dvci_event_duration_seconds_count", function="send-sms", type="vn.gov.dvc.sms.send.requested"),
    }
    h, b = binary(sdk_event(sms(text="Hồ sơ của ông/bà đã có kết quả", unsigned=False)))
    assert (await send_sms.post("/", headers=h, content=b)).json()["cost_vnd"] == 900
    await send_sms.post("/", headers=h, content=b)  # replay
    h2, b2 = binary(sdk_event(sms(to="12345")))
    await send_sms.post("/", headers=h2, content=b2)  # failed: invalid recipient
    await send_sms.post("/", headers={"content-type": "application/json"}, content=b"{}")  # not a CloudEvent
    assert sample("dvci_events_total", function="send-sms", type="vn.gov.dvc.sms.send.requested",
                  outcome="accepted") == before["accepted"] + 1
    assert sample("dvci_events_total", function="send-sms", type="vn.gov.dvc.sms.send.requested",
                  outcome="failed") == before["failed"] + 1
    assert sample("dvci_idempotency_total", function="send-sms", result="replayed") == before["replayed"] + 1
    assert sample("dvci_events_total", function="send-sms", type="other", outcome="invalid") == before["invalid"] + 1
    assert sample("dvci_provider_calls_total", kind="sms", provider="viettel", result="ok") == before["ok"] + 1
    assert sample("dvci_sms_segments_total", provider="viettel", encoding="ucs2") == before["seg"] + 1
    assert sample("dvci_sms_cost_vnd_total", provider="viettel") == before["cost"] + 900
    assert sample("dvci_event_duration_seconds_count", function="send-sms",
                  type="vn.gov.dvc.sms.send.requested") == before["hist"] + 3


async def test_breaker_and_rate_metrics(send_sms, sandbox):
    from sandbox.base import Faults

    opened = sample("dvci_breaker_transitions_total", kind="sms", provider="viettel", to="open")
    sandbox["viettel"].faults = Faults(error_rate=1.0, status=503)
    for _ in range(3):
        h, b = binary(sdk_event(sms()))
        await send_sms.post("/", headers=h, content=b)
    assert sample("dvci_breaker_transitions_total", kind="sms", provider="viettel", to="open") == opened + 1
    assert sample("dvci_breaker_state", kind="sms", provider="viettel") == 2
    assert sample("dvci_provider_calls_total", kind="sms", provider="viettel", result="unavailable") >= 3


def test_type_labels_are_bounded():
    assert metrics.bounded_type("vn.gov.dvc.sms.send.requested") == "vn.gov.dvc.sms.send.requested"
    assert metrics.bounded_type("com.attacker.0912345678") == "other"


async def test_metrics_endpoint_parses_as_prometheus_text(send_sms):
    resp = await send_sms.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    families = {f.name for f in text_string_to_metric_families(resp.text)}
    assert {"dvci_events", "dvci_event_duration_seconds", "dvci_provider_calls"} <= families


def _known_metric_names() -> set[str]:
    names = set()
    for family in metrics.REGISTRY.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
    return names


def _metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(dvci_[a-z_]+)\b", expr))


def test_alert_rules_name_existing_metrics():
    rules = yaml.safe_load((ROOT / "infra/observability/alerts.yaml").read_text())
    known = _known_metric_names()
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert len(exprs) >= 6
    for expr in exprs:
        used = _metrics_in(expr)
        assert used, expr
        assert used <= known, f"unknown metric(s) {used - known} in: {expr}"
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {"DvciBreakerOpen", "DvciDeadLetters", "DvciProviderErrorRate", "DvciSmsSpendOverBudget",
            "DvciLatencyP99", "DvciReceiptLag"} <= names


def test_dashboard_names_existing_metrics():
    dash = json.loads((ROOT / "infra/observability/grafana-dashboard.json").read_text())
    known = _known_metric_names()
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    for expr in exprs:
        assert _metrics_in(expr) <= known, expr
    covered = set().union(*(_metrics_in(e) for e in exprs))
    families = {f.name for f in metrics.REGISTRY.collect() if f.name.startswith("dvci_")}
    assert all(any(c.startswith(f) for c in covered) for f in families), "a metric family has no panel"


def test_collector_config_parses():
    cfg = yaml.safe_load((ROOT / "infra/observability/otel-collector.yaml").read_text())
    assert cfg["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]


def test_formatter_masks_citizen_data():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent to 0912345678 (nguyen.van.a@gmail.com)", None,
                               None)
    record.detail = "CCCD 001099012345 at +84 987654321"
    line = JsonFormatter().format(record)
    assert "0912345678" not in line and "nguyen.van.a" not in line and "001099012345" not in line
    assert json.loads(line)["msg"].startswith("sent to 8491****678")


def test_an_extra_field_never_replaces_the_level_of_a_log_line():
    import logging

    import orjson

    from shared.observability.logs import JsonFormatter

    record = logging.LogRecord("dvci.test", logging.WARNING, __file__, 1, "event handled", None, None)
    record.level = "B-T"  # e.g. a signature level in ctx.log_fields
    line = orjson.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["field_level"] == "B-T"


async def test_an_unknown_event_type_is_redacted_in_the_log_like_the_id(dead_letter):
    """The dead-letter sink takes any type: a type is caller data unless the function handles it (found by the
    fuzzing pass: a generated type holding a phone number was logged in clear)."""
    from tests.conftest import _LOGGED
    from tests.helpers import binary, sdk_event

    before = len(_LOGGED)
    h, b = binary(sdk_event({"k": 1}, "vn.gov.dvc.0912345678.x", id_="leak-1"))
    assert (await dead_letter.post("/", headers=h, content=b)).status_code == 202
    lines = [line for line in _LOGGED[before:] if "leak-1" in line]
    assert lines and not any("0912345678" in line for line in lines)
