"""Cost routing, porting, Decree 91 and delivery receipts, end to end: a send_sms server process, the
sandboxes over real HTTP (their receipts pushed to its webhooks, Viettel's pulled), K_SINK captured here."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from shared.integrations.sms import decree91
from tests.helpers import Receiver, binary, sdk_event
from tests.procs import FunctionServer, post_event

pytestmark = pytest.mark.slow
PACKAGED = Path(__file__).resolve().parent.parent / "shared" / "integrations" / "sms" / "providers.yaml"


@pytest.fixture
async def sink():
    async with Receiver() as r:
        yield r


@pytest.fixture
async def server(redis, sandbox, sink, tmp_path):
    from shared.storage.redis import resolve_url

    policy = tmp_path / "providers.yaml"  # the packaged price table (on-net cheaper), test-sized limits
    policy.write_text(PACKAGED.read_text().replace("tps: 300", "tps: 1000").replace("tps: 200", "tps: 1000"))
    fn = await FunctionServer("send_sms", {"REDIS_URL": resolve_url(), "K_SINK": sink.url,
                                           "DVCI_SMS_POLICY_FILE": str(policy),
                                           "DVCI_SMS_VIETTEL_DELIVERED_AFTER_S": "0.3"}).start()
    yield fn
    fn.stop()


async def send(fn: FunctionServer, data: dict) -> tuple[int, dict, dict]:
    h, b = binary(sdk_event(data, dossierid="H29-7"))
    async with aiohttp.ClientSession() as s:
        status, headers, body = await post_event(s, fn.url, h, b)
    import orjson

    return status, headers, orjson.loads(body) if body else {}


async def control(provider: str, path: str, body: dict) -> dict:
    from tests.conftest import SANDBOX

    async with aiohttp.ClientSession() as s, s.post(f"{SANDBOX}/{provider}/_sandbox/{path}", json=body) as r:
        return await r.json()


async def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def updates(sink: Receiver) -> list[dict]:
    return [e["data"] for e in sink.json() if e["headers"]["ce-type"] == "vn.gov.dvc.sms.delivery.updated"]


@pytest.mark.parametrize(("number", "provider", "cost"), [
    ("0912000001", "vnpt", 540),      # VinaPhone: VNPT on-net
    ("0903000001", "mobifone", 550),  # MobiFone on-net
    ("0983000001", "viettel", 560),   # Viettel on-net
    ("0923000001", "mobifone", 700),  # Vietnamobile: the cheapest off-net price
])
async def test_cheapest_route_per_carrier_and_unsigned_text(server, sandbox, number, provider, cost):
    status, headers, reply = await send(server, {"to": number, "text": "Hồ sơ của ông/bà đã được tiếp nhận."})
    assert status == 200 and headers["ce-type"] == "vn.gov.dvc.sms.accepted"
    assert reply["provider"] == provider and reply["encoding"] == "gsm7" and reply["cost_vnd"] == cost
    assert len(sandbox[provider].messages) == 1


async def test_cheapest_provider_with_an_open_breaker_is_skipped(server, sandbox, monkeypatch):
    from dvci import cli
    from shared.storage.redis import resolve_url

    monkeypatch.setenv("REDIS_URL", resolve_url())
    assert await cli._breaker(cli.build_parser().parse_args(["breaker", "open", "sms.vnpt", "--reason", "test"])) == 0
    _status, _, reply = await send(server, {"to": "0912000002", "text": "Ho so da duoc tiep nhan"})
    assert reply["provider"] == "mobifone" and reply["cost_vnd"] == 700  # next cheapest for VinaPhone


async def test_push_receipt_delivered_once_in_order_and_authenticated(server, sandbox, sink):
    got = sink
    await control("mobifone", "receipts", {"callback_url": server.url + "dlr/mobifone", "delay_ms": 50,
                                           "carrier": "mobifone"})
    _status, _, reply = await send(server, {"to": "0903000010", "text": "Ho so da co ket qua"})
    assert reply["provider"] == "mobifone"
    assert await wait_for(lambda: len(updates(got)) == 1)
    update = updates(got)[0]
    assert update["status"] == "delivered" and update["to"] == "84903000010"
    assert update["provider_message_id"] == reply["provider_message_id"] and update["carrier"] == "mobifone"
    assert got.headers[0]["ce-dossierid"] == "H29-7"
    ref = next(iter(sandbox["mobifone"].messages))
    # a duplicate and a late, older status change nothing
    for late in ("delivered", "failed"):
        answer = await control("mobifone", "receipts/send", {"reference": ref, "status": late})
        assert answer["callback_status"] == 200
    await asyncio.sleep(0.2)
    assert len(updates(got)) == 1
    # unauthenticated or forged: 401, nothing emitted
    async with aiohttp.ClientSession() as s:
        body = b'{"message_id": "%s", "status": "failed"}' % reply["provider_message_id"].encode()
        async with s.post(server.url + "dlr/mobifone", data=body) as r:
            assert r.status == 401 and r.headers["content-type"] == "application/problem+json"
        async with s.post(server.url + "dlr/mobifone", data=body,
                          headers={"x-dvci-signature": f"t={int(time.time())},v1=" + "0" * 64}) as r:
            assert r.status == 401
        from shared.security.webhooks import WebhookAuth, signed_headers

        old = signed_headers(WebhookAuth("sandbox-dlr-secret"), body, now=time.time() - 3600)
        async with s.post(server.url + "dlr/mobifone", data=body, headers=old) as r:
            assert r.status == 401  # replay window
    assert len(updates(got)) == 1


async def test_multipart_receipts_aggregate_to_one_status(server, sandbox, sink):
    got = sink
    text = "Hồ sơ " + "đã được tiếp nhận và đang xử lý. " * 3  # UCS-2, 2 segments
    _status, _, reply = await send(server, {"to": "0903000011", "text": text, "unsigned": False})
    assert reply["segments"] == 2 and reply["provider"] == "mobifone"
    await control("mobifone", "receipts", {"callback_url": server.url + "dlr/mobifone"})
    ref = next(iter(sandbox["mobifone"].messages))
    await control("mobifone", "receipts/send", {"reference": ref, "status": "delivered", "part": 2, "parts": 2})
    await asyncio.sleep(0.2)
    assert updates(got) == []  # one part of two: not yet
    await control("mobifone", "receipts/send", {"reference": ref, "status": "delivered", "part": 1, "parts": 2})
    assert await wait_for(lambda: len(updates(got)) == 1)
    assert updates(got)[0]["status"] == "delivered"


async def test_vnpt_push_receipts(server, sandbox, sink):
    got = sink
    await control("vnpt", "receipts", {"callback_url": server.url + "dlr/vnpt", "delay_ms": 50,
                                       "success_rate": 0.0, "carrier": "vinaphone"})
    _, _, reply = await send(server, {"to": "0912000012", "text": "Ho so can bo sung"})
    assert reply["provider"] == "vnpt"
    assert await wait_for(lambda: len(updates(got)) == 1)
    assert updates(got)[0]["status"] == "failed"


async def test_viettel_receipts_are_pulled(server, sandbox, sink):
    got = sink
    await control("viettel", "receipts", {"delay_ms": 0, "success_rate": 0.0})
    _, _, failed = await send(server, {"to": "0983000013", "text": "Ho so mot"})
    await control("viettel", "receipts", {"delay_ms": 0, "success_rate": 1.0})
    _, _, delivered = await send(server, {"to": "0983000014", "text": "Ho so hai"})
    await asyncio.sleep(0.5)  # past DVCI_SMS_VIETTEL_DELIVERED_AFTER_S
    h, b = binary(sdk_event({"job": "sms-pull-receipts"}, "dev.knative.sources.ping",
                            source="/apis/v1/namespaces/dvci/pingsources/sms-pull-receipts"))
    async with aiohttp.ClientSession() as s:
        ping_status, _, _ = await post_event(s, server.url, h, b)
    assert ping_status == 202
    by_id = {u["provider_message_id"]: u["status"] for u in updates(got)}
    assert by_id == {failed["provider_message_id"]: "failed", delivered["provider_message_id"]: "delivered"}


async def test_ported_number_learnt_from_a_receipt_changes_the_route(server, sandbox, sink):
    got = sink
    await control("mobifone", "receipts", {"callback_url": server.url + "dlr/mobifone", "delay_ms": 10,
                                           "carrier": "viettel"})
    _, _, first = await send(server, {"to": "0903000015", "text": "Ho so mot"})
    assert first["provider"] == "mobifone"
    assert await wait_for(lambda: len(updates(got)) == 1)
    assert updates(got)[0]["carrier"] == "viettel"
    _, _, second = await send(server, {"to": "0903000015", "text": "Ho so hai"})
    assert second["provider"] == "viettel" and second["cost_vnd"] == 560  # on-net for where it lives now


@pytest.mark.parametrize(("local", "expected"), [
    ("2026-11-27T06:59:59", "2026-11-27T07:00:00"),
    ("2026-11-27T07:00:00", None),
    ("2026-11-27T21:59:59", None),
    ("2026-11-27T22:00:00", "2026-11-28T07:00:00"),
    ("2026-11-27T23:30:00", "2026-11-28T07:00:00"),
    ("2026-11-28T00:00:00", "2026-11-28T07:00:00"),
])
def test_advertising_window_edges(local, expected):
    now = datetime.fromisoformat(local).replace(tzinfo=decree91.VIETNAM)
    got = decree91.next_allowed(now.astimezone(UTC))
    assert (got.isoformat()[:19] if got else None) == expected


async def test_advertising_outside_the_window_is_scheduled_then_drained(redis, sandbox, sink):
    from shared.integrations.sms.jobs import SmsJobs
    from shared.integrations.sms.service import Scheduled, SmsRequest, default_service
    from shared.runtime import EventContext, FunctionApp
    from shared.runtime.events import CloudEvent
    from shared.runtime.settings import RuntimeSettings

    got = sink
    app = FunctionApp("send-sms", settings=RuntimeSettings(K_SINK=sink.url))
    jobs = SmsJobs(app)
    service = default_service()
    night = datetime(2026, 11, 27, 23, 0, tzinfo=decree91.VIETNAM)
    service.clock = lambda: night
    try:
        event = CloudEvent(id="ad-1", source="/dvc/core/ads", type="vn.gov.dvc.sms.send.requested",
                           extensions={"dossierid": "H29-9"},
                           data={"to": "0983000016", "text": "Mien phi dich vu", "category": "advertising"})
        ctx = EventContext(event, app, time.monotonic() + 10)
        outcome = await service.send(ctx, SmsRequest("0983000016", "Mien phi dich vu", category="advertising"))
        assert isinstance(outcome, Scheduled) and outcome.send_at.hour == 7
        await jobs.hold(ctx, outcome.send_at)
        await jobs.hold(ctx, outcome.send_at)  # a redelivery schedules it once
        assert sandbox["viettel"].requests == [] and await jobs.schedule().size() == 1
        assert await jobs.drain(night.astimezone(UTC)) == 0  # not yet
        assert await jobs.drain(outcome.send_at) == 1
        assert await jobs.schedule().size() == 0
        drained = got.json()
        assert len(drained) == 1 and drained[0]["headers"]["ce-type"] == "vn.gov.dvc.sms.send.requested"
        assert drained[0]["data"]["category"] == "advertising" and drained[0]["headers"]["ce-dossierid"] == "H29-9"
    finally:
        service.clock = lambda: datetime.now(UTC)


async def test_cost_report_totals_spend_by_provider_and_carrier(server, sandbox, capsys, monkeypatch):
    from dvci import cli
    from shared.storage.redis import resolve_url

    for number, text in (("0912000020", "Ho so mot"), ("0903000021", "Ho so hai"), ("0983000022", "Ho so ba")):
        await send(server, {"to": number, "text": text})
    monkeypatch.setenv("REDIS_URL", resolve_url())
    assert await cli._sms(cli.build_parser().parse_args(["sms", "cost", "--since", "1h", "--json"])) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert {(r["provider"], r["carrier"], r["messages"], r["cost_vnd"]) for r in rows} == {
        ("vnpt", "vinaphone", 1, 540.0), ("mobifone", "mobifone", 1, 550.0), ("viettel", "viettel", 1, 560.0)}
    with pytest.raises(SystemExit, match="--since takes"):
        await cli._sms(cli.build_parser().parse_args(["sms", "cost", "--since", "yesterday"]))
