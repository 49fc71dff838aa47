"""The HTTP contract of docs/architecture.md, through functions-framework's ASGI app, with SDK-encoded events."""

from __future__ import annotations

import orjson
import pytest

from shared.runtime.events import derive_id
from tests.helpers import binary, sdk_event, sms, structured


@pytest.mark.parametrize("mode", [binary, structured])
async def test_both_modes_get_200_and_a_binary_reply(send_sms, sandbox, mode):
    event = sdk_event(sms(to="0912 345 678"), dossierid="D-1",
                      traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    headers, body = mode(event)
    resp = await send_sms.post("/", headers=headers, content=body)
    assert resp.status_code == 200
    assert resp.headers["ce-type"] == "vn.gov.dvc.sms.accepted"
    assert resp.headers["ce-specversion"] == "1.0"
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["ce-source"] == "/dvci/send-sms"
    assert resp.headers["ce-id"] == derive_id(event["source"], event["id"], "vn.gov.dvc.sms.accepted")
    assert resp.headers["ce-dossierid"] == "D-1"
    assert resp.headers["ce-traceparent"] == event["traceparent"]
    data = resp.json()
    assert data["to"] == "84912345678" and data["provider"] == "viettel" and data["segments"] == 1
    assert sum(sandbox["viettel"].by_reference.values()) == 1


async def test_redelivery_gets_the_same_reply_and_sends_once(send_sms, sandbox):
    event = sdk_event(sms())
    first = await send_sms.post("/", headers=binary(event)[0], content=binary(event)[1])
    again = await send_sms.post("/", headers=structured(event)[0], content=structured(event)[1])
    assert first.status_code == again.status_code == 200
    assert first.headers["ce-id"] == again.headers["ce-id"]
    assert first.content == again.content
    assert list(sandbox["viettel"].by_reference.values()) == [1]


async def test_reply_ids_are_deterministic_and_distinct():
    a = derive_id("/s", "1", "t.accepted")
    assert a == derive_id("/s", "1", "t.accepted")
    assert len({a, derive_id("/s", "2", "t.accepted"), derive_id("/s", "1", "t.failed"),
                derive_id("/s2", "1", "t.accepted")}) == 4


@pytest.mark.parametrize(("headers", "body", "field"), [
    ({"content-type": "application/json"}, b"{}", "ce-specversion"),
    ({"content-type": "application/cloudevents+json"}, b'{"specversion":"1.0","source":"/s","type":"t"}', "id"),
    ({"content-type": "application/cloudevents+json"}, b"{not json", "body"),
    ({"ce-specversion": "1.0", "ce-id": "1", "ce-type": "vn.gov.dvc.sms.send.requested",
      "content-type": "application/json"}, b"{}", "ce-source"),
    ({"ce-specversion": "0.3", "ce-id": "1", "ce-source": "/s", "ce-type": "x",
      "content-type": "application/json"}, b"{}", "specversion"),
    ({"content-type": "application/cloudevents-batch+json"}, b"[]", "content-type"),
])
async def test_not_a_cloudevent_is_400_problem_naming_the_field(send_sms, headers, body, field):
    resp = await send_sms.post("/", headers=headers, content=body)
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["status"] == 400 and problem["title"] and problem["detail"]
    assert field in [e["field"] for e in problem["errors"]]


async def test_unknown_type_is_400(send_sms):
    headers, body = binary(sdk_event({"x": 1}, "vn.gov.dvc.nothing.requested"))
    resp = await send_sms.post("/", headers=headers, content=body)
    assert resp.status_code == 400
    assert resp.json()["type"] == "urn:dvci:problem:unknown-event-type"
    assert "vn.gov.dvc.sms.send.requested" in resp.json()["detail"]


@pytest.mark.parametrize(("data", "field"), [
    ({"text": "hi"}, "data.to"),
    ({"to": "0912345678", "text": ""}, "data.text"),
    ({"to": "0912345678", "text": "x", "category": "spam"}, "data.category"),
    ({"to": "0912345678", "text": "x", "surprise": 1}, "data.surprise"),
])
async def test_data_failing_its_model_is_400_naming_the_field(send_sms, sandbox, data, field):
    headers, body = binary(sdk_event(data))
    resp = await send_sms.post("/", headers=headers, content=body)
    assert resp.status_code == 400
    assert field in [e["field"] for e in resp.json()["errors"]]
    assert sandbox["viettel"].requests == []


async def test_same_id_different_payload_is_400(send_sms, sandbox):
    event = sdk_event(sms())
    assert (await send_sms.post("/", headers=binary(event)[0], content=binary(event)[1])).status_code == 200
    other = sdk_event(sms(text="something else"), id_=event["id"])
    resp = await send_sms.post("/", headers=binary(other)[0], content=binary(other)[1])
    assert resp.status_code == 400
    assert resp.json()["type"] == "urn:dvci:problem:conflicting-reuse"


async def test_in_progress_duplicate_is_409_with_retry_after(send_sms, sandbox):
    sandbox["viettel"].faults = __import__("sandbox.base", fromlist=["Faults"]).Faults(latency_ms=400)
    import asyncio

    event = sdk_event(sms())
    h, b = binary(event)
    first = asyncio.create_task(send_sms.post("/", headers=h, content=b))
    await asyncio.sleep(0.15)
    dup = await send_sms.post("/", headers=h, content=b)
    assert dup.status_code == 409
    assert int(dup.headers["retry-after"]) >= 1
    assert (await first).status_code == 200
    assert list(sandbox["viettel"].by_reference.values()) == [1]


async def test_business_failure_is_200_failed_outcome(send_sms, sandbox):
    headers, body = binary(sdk_event(sms(to="0212345678")))
    resp = await send_sms.post("/", headers=headers, content=body)
    assert resp.status_code == 200
    assert resp.headers["ce-type"] == "vn.gov.dvc.sms.failed"
    assert resp.json()["reason"] == "invalid_recipient"


async def test_all_providers_unavailable_is_503_with_retry_after(send_sms, sandbox):
    from sandbox.base import Faults

    for sim in sandbox.values():
        sim.faults = Faults(error_rate=1.0, status=503)
    headers, body = binary(sdk_event(sms()))
    resp = await send_sms.post("/", headers=headers, content=body)
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/problem+json"
    assert int(resp.headers["retry-after"]) >= 1


async def test_dead_letter_sink_answers_202_empty(dead_letter):
    headers, body = binary(sdk_event({"any": "thing"}, "vn.gov.dvc.whatever", knativeerrorcode="400"))
    resp = await dead_letter.post("/", headers=headers, content=body)
    assert resp.status_code == 202
    assert resp.content == b""


async def test_health_endpoints(send_sms):
    assert (await send_sms.get("/health/liveness")).status_code == 200
    ready = await send_sms.get("/health/readiness")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_error_table_maps_every_class():
    from shared.runtime import errors

    expected = {errors.InvalidEvent: 400, errors.UnknownEventType: 400, errors.ConflictingReuse: 400,
                errors.EventInProgress: 409, errors.RateLimited: 429, errors.ProvidersUnavailable: 503,
                errors.StateUnavailable: 503}
    for cls, status in expected.items():
        assert errors.mapping_for(cls("x")).status == status
    assert errors.mapping_for(KeyError("x")).status == 500
    assert orjson.loads(__import__("shared.runtime.problem", fromlist=["error_response"])
                        .error_response(errors.RateLimited("slow down", retry_after=2.5)).body)["status"] == 429
