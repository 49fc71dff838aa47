"""postal_track as a real server process: Viettel Post pushes webhooks (the sandbox posts them), VietnamPost's
feed is polled by the `postal-poll` job; events captured at a K_SINK stand-in. Real Redis, real HTTP."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import pytest

from tests.helpers import Receiver, binary, sdk_event
from tests.procs import FunctionServer, post_event
from tests.test_postal_create import post, shipment

VN = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=VN)


@pytest.fixture
async def track(postal_sandbox, redis):
    from shared.storage.redis import resolve_url

    async with Receiver() as sink:
        server = await FunctionServer("postal_track", {"REDIS_URL": resolve_url(), "K_SINK": sink.url,
                                                       "DVCI_POSTAL_STALE_AFTER_S": "3600"}).start()
        try:
            yield server, sink
        finally:
            server.stop()


def types(sink: Receiver) -> list[str]:
    return [h["ce-type"] for h in sink.headers]


def of(sink: Receiver, type_: str) -> list[dict]:
    return [e["data"] for e in sink.json() if e["headers"]["ce-type"] == type_]


async def settle(sink: Receiver, n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sink.got) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # and nothing more arrives


async def ping(server: FunctionServer) -> int:
    h, b = binary(sdk_event({"job": "postal-poll"}, "dev.knative.sources.ping", source="/knative/ping"))
    async with aiohttp.ClientSession() as s:
        return (await post_event(s, server.url, h, b))[0]


async def test_viettelpost_webhooks_out_of_order_and_duplicates_deliver_once(postal_create, postal_sandbox, track):
    server, sink = track
    vtp = postal_sandbox["viettelpost"]
    vtp.prices["standard"] = 1000
    vtp.callback_url = server.url + "webhooks/viettelpost"
    data = shipment("other")
    _, created = await post(postal_create, data)
    number = created["tracking_number"]
    assert created["carrier"] == "viettelpost"

    async def push(code: str, minutes: int) -> int:
        return await vtp.report(number, code, (T0 + timedelta(minutes=minutes)).timestamp())

    assert await push("105", 0) == 200       # picked up
    assert await push("300", 30) == 200      # in transit
    assert await push("200", 10) == 200      # an older event arrives late: history only
    assert await push("300", 30) == 200      # the same event again: duplicate
    assert await push("500", 60) == 200      # out for delivery
    assert await push("501", 90) == 200      # delivered
    assert await push("501", 90) == 200      # again
    assert await push("506", 120) == 200     # after a final status: nothing moves
    await settle(sink, 5)
    updates = of(sink, "vn.gov.dvc.postal.tracking.updated")
    assert [(u["status"], u.get("previous_status")) for u in updates] == [
        ("picked_up", None), ("in_transit", "picked_up"), ("out_for_delivery", "in_transit"),
        ("delivered", "out_for_delivery")]
    assert updates[0]["dossier_id"] == data["dossier_id"] and updates[0]["carrier_status"] == "105"
    assert updates[-1]["at"] == (T0 + timedelta(minutes=90)).isoformat()
    delivered = of(sink, "vn.gov.dvc.postal.delivered")
    assert len(delivered) == 1 and delivered[0]["tracking_number"] == number
    assert all(h.get("ce-dossierid") == data["dossier_id"] for h in sink.headers)

    from shared.integrations.postal.tracking import Tracker
    from shared.runtime.settings import runtime_settings
    from shared.storage.redis import Keys, get_fast_redis, get_redis

    history = await Tracker(get_fast_redis(), get_redis(), Keys(runtime_settings().env), None).history(  # type: ignore[arg-type]
        "viettelpost", number)
    assert [h["carrier_status"] for h in history] == ["105", "300", "200", "500", "501", "506"]


async def test_forged_webhooks_are_refused_and_emit_nothing(postal_create, postal_sandbox, track):
    server, sink = track
    vtp = postal_sandbox["viettelpost"]
    vtp.prices["standard"] = 1000
    _, created = await post(postal_create, shipment("other"))
    body = orjson.dumps(vtp.webhook_body(created["tracking_number"], {"code": "501", "at": time.time(),
                                                                      "description": "", "location": ""}))
    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"authorization": "wrong-secret"}, {"authorization": ""}):
            async with s.post(server.url + "webhooks/viettelpost", data=body,
                              headers={"content-type": "application/json", **headers}) as r:
                assert r.status == 401, headers
                assert r.headers["content-type"].startswith("application/problem+json")
        async with s.post(server.url + "webhooks/viettelpost", data=b"x" * 300_000,
                          headers={"authorization": "sandbox-vtp-webhook-secret"}) as r:
            assert r.status == 413
    await asyncio.sleep(0.3)
    assert sink.got == []
    # the real secret passes
    vtp.callback_url = server.url + "webhooks/viettelpost"
    assert await vtp.report(created["tracking_number"], "501", time.time()) == 200
    await settle(sink, 2)
    assert types(sink) == ["vn.gov.dvc.postal.tracking.updated", "vn.gov.dvc.postal.delivered"]


async def test_vnpost_feed_polled_with_a_cursor(postal_create, postal_sandbox, track, redis):
    server, sink = track
    vnpost = postal_sandbox["vnpost"]
    data = shipment("result_delivery")
    _, created = await post(postal_create, data)
    number = created["tracking_number"]
    now = time.time()
    for code, minutes in (("6", 1), ("10", 20), ("7", 10), ("12", 40), ("14", 60), ("14", 60)):
        await vnpost.report(number, code, now + minutes * 60)  # "7" comes late; "14" twice (two feed docs)
    assert await ping(server) == 202
    await settle(sink, 6)
    updates = of(sink, "vn.gov.dvc.postal.tracking.updated")
    assert [u["status"] for u in updates] == ["pre_transit", "picked_up", "in_transit", "out_for_delivery",
                                              "delivered"]
    assert updates[-1]["carrier_status"] == "14" and updates[-1]["dossier_id"] == data["dossier_id"]
    assert len(of(sink, "vn.gov.dvc.postal.delivered")) == 1
    before = len(sink.got)
    assert await ping(server) == 202  # nothing new after the cursor
    await vnpost.report(number, "15", now + 61 * 60)  # after a final status: nothing
    assert await ping(server) == 202
    await asyncio.sleep(0.3)
    assert len(sink.got) == before
    from shared.runtime.settings import runtime_settings
    from shared.storage.redis import Keys

    cursor = await redis.get(Keys(runtime_settings().env).key("postal", "vnpost", "cursor"))
    assert cursor.decode() == vnpost.feed[-1]["_id"]  # the cursor kept in Redis moved to the end
    reads = [r["lastId"] for r in vnpost.requests if r.get("path") == "tracking"]
    assert reads[0] == "" and reads[1] == reads[2] != ""  # each run starts where the last one stopped


async def test_stale_vnpost_shipments_are_queried_one_by_one(postal_create, postal_sandbox, redis):
    from shared.storage.redis import resolve_url

    vnpost = postal_sandbox["vnpost"]
    _, created = await post(postal_create, shipment("dossier_pickup"))
    number = created["tracking_number"]
    async with Receiver() as sink:
        server = await FunctionServer("postal_track", {"REDIS_URL": resolve_url(), "K_SINK": sink.url,
                                                       "DVCI_POSTAL_STALE_AFTER_S": "0"}).start()
        try:
            assert await ping(server) == 202  # reads the feed (the creation event)
            await settle(sink, 1)
            n = len(sink.got)
            await vnpost.report(number, "6", time.time())
            vnpost.feed.clear()  # the feed lost it: only the per-order query can see it
            assert await ping(server) == 202
            await settle(sink, n + 1)
            assert [u["status"] for u in of(sink, "vn.gov.dvc.postal.tracking.updated")][-1] == "picked_up"
            assert any(r.get("path") == "getOrder" for r in vnpost.requests)
        finally:
            server.stop()


async def test_dvci_postal_track_and_label(postal_create, postal_sandbox, tmp_path):
    import os
    import subprocess
    import sys

    from shared.storage.redis import resolve_url
    from tests.conftest import ROOT

    vnpost = postal_sandbox["vnpost"]
    _, created = await post(postal_create, shipment())
    number = created["tracking_number"]
    env = {**os.environ, "REDIS_URL": resolve_url()}

    def dvci(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "dvci.cli", *args], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    from shared.integrations.postal.tracking import Tracker
    from shared.runtime.settings import runtime_settings
    from shared.storage.redis import Keys, get_fast_redis, get_redis

    sent: list[str] = []

    async def emit(type_, data, key, ext):
        sent.append(type_)

    tracker = Tracker(get_fast_redis(), get_redis(), Keys(runtime_settings().env), emit)
    vnpost_client = __import__("shared.integrations.postal.vnpost", fromlist=["x"]).VnpostCarrier()
    await vnpost.report(number, "6", time.time() + 60)
    await vnpost.report(number, "14", time.time() + 120)
    assert (await tracker.poll(vnpost_client))["changed"] == 3
    assert sent.count("vn.gov.dvc.postal.delivered") == 1
    out = dvci("postal", "track", number)
    assert "status: delivered" in out and "picked_up" in out and "[14]" in out
    pdf = tmp_path / "label.pdf"
    out = dvci("postal", "label", number, "-o", str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF") and "vnpost" in out and str(pdf) in out
    assert number in __import__("tests.test_postal_create", fromlist=["x"]).pdf_text(pdf.read_bytes())


async def test_a_crash_between_the_status_change_and_its_emit_loses_nothing(redis):
    """The status book records the change and its pending emit in one call; a process dying before the emit
    leaves it pending, and postal-poll's replay emits it (same id) from the shipment's history."""
    from shared.integrations.postal import CarrierEvent
    from shared.integrations.postal.tracking import Tracker
    from shared.runtime.settings import runtime_settings
    from shared.storage.redis import Keys, get_fast_redis

    keys = Keys(runtime_settings().env)
    await redis.set(keys.key("postal", "tracking", "viettelpost", "VTP0001"), "ship-1")
    await redis.hset(keys.key("postal", "shipment", "ship-1"), mapping={"dossier_id": "H29-77", "purpose": "other"})

    class Crash(BaseException):
        pass

    async def dying(*_args) -> None:
        raise Crash()

    got: list[tuple[str, dict, str]] = []

    async def emit(type_, data, key, ext) -> None:
        got.append((type_, data, key))

    event = CarrierEvent(carrier="viettelpost", tracking_number="VTP0001", carrier_status="501", description="",
                         at_ms=int(T0.timestamp() * 1000), event_id="vtp-ev-1")
    with pytest.raises(Crash):
        await Tracker(get_fast_redis(), redis, keys, dying).apply(event)
    after = Tracker(get_fast_redis(), redis, keys, emit)
    assert (await after.apply(event)).action == "duplicate"  # the carrier's retry alone would emit nothing
    assert await after.replay_unconfirmed(older_than_s=-1) == 1
    assert [t for t, _, _ in got] == ["vn.gov.dvc.postal.tracking.updated", "vn.gov.dvc.postal.delivered"]
    assert got[1][1]["dossier_id"] == "H29-77" and await after.replay_unconfirmed(older_than_s=-1) == 0
