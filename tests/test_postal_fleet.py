"""postal_create across processes: 20 concurrent requests for one shipment, two server processes -> one order."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from shared.integrations.postal.service import client_order_number
from tests.helpers import binary, sdk_event
from tests.procs import FunctionServer, post_event
from tests.test_postal_create import REQUESTED, shipment

pytestmark = pytest.mark.slow


@pytest.fixture
async def postal_servers(postal_sandbox):
    from shared.storage.redis import resolve_url

    procs = [FunctionServer("postal_create", {"REDIS_URL": resolve_url()}) for _ in range(2)]
    await asyncio.gather(*(p.start() for p in procs))
    yield procs
    for p in procs:
        p.stop()


async def test_20_concurrent_duplicates_across_2_processes_create_one_order(postal_servers, postal_sandbox):
    vnpost = postal_sandbox["vnpost"]
    data = shipment("result_delivery")
    # warm both processes (carrier login) on another shipment, then slow the carrier down
    async with aiohttp.ClientSession() as s:
        for p in postal_servers:
            h, b = binary(sdk_event(shipment(), REQUESTED))
            assert (await post_event(s, p.url, h, b))[0] == 200
    vnpost.faults = None
    vnpost.requests.clear()
    from sandbox.base import Faults

    vnpost.faults = Faults(latency_ms=300)
    # 10 redeliveries of one event and 10 other events for the same (dossier_id, purpose)
    same = binary(sdk_event(data, REQUESTED))
    events = [same] * 10 + [binary(sdk_event(data, REQUESTED)) for _ in range(10)]
    pending = list(range(20))
    answers: dict[int, bytes] = {}
    async with aiohttp.ClientSession() as s:
        for _ in range(40):
            results = await asyncio.gather(*(post_event(s, postal_servers[i % 2].url, *events[i]) for i in pending))
            assert {r[0] for r in results} <= {200, 409}, [(r[0], r[2][:200]) for r in results]
            for i, r in zip(list(pending), results, strict=True):
                if r[0] == 200:
                    answers[i] = r[2]
                    pending.remove(i)
            if not pending:
                break
            await asyncio.sleep(0.3)
    assert not pending
    outs = [orjson.loads(b) for b in answers.values()]
    assert len({o["tracking_number"] for o in outs}) == 1 and {o["carrier"] for o in outs} == {"vnpost"}
    ref = client_order_number(data["dossier_id"], data["purpose"])
    assert vnpost.by_reference[ref] == 1  # one create reached the carrier
    assert vnpost.messages[ref]["tracking_number"] == outs[0]["tracking_number"]
    assert len(vnpost.messages) == 3  # the two warm-ups and this one
