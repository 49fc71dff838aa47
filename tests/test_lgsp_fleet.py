"""lgsp_sync across a fleet: two real server processes, real Redis, the DVCQG/LGSP sandboxes over HTTP,
a broker stand-in that delivers out of order and retries what is not a 200, K_SINK as a receiver."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import aiohttp
import orjson
import pytest

from sandbox.base import Faults
from tests.helpers import Receiver, binary, sdk_event
from tests.procs import FunctionServer, post_event
from tests.test_lgsp_sync import CHANGED, PING, change, dossier_id

pytestmark = pytest.mark.slow


@pytest.fixture
async def fleet(lgsp_sandbox):
    from shared.storage.redis import resolve_url

    started: list[FunctionServer] = []

    async def start(k_sink: str, n: int = 2, **env: str) -> list[FunctionServer]:
        procs = [FunctionServer("lgsp_sync", {"REDIS_URL": resolve_url(), "K_SINK": k_sink, **env})
                 for _ in range(n)]
        await asyncio.gather(*(p.start() for p in procs))
        started.extend(procs)
        return procs

    yield start
    for p in started:
        p.stop()


async def deliver(session: aiohttp.ClientSession, url: str, data: dict[str, Any], type_: str = CHANGED,
                  tries: int = 20) -> dict[str, Any] | None:
    """The broker: the same event again until a 2xx (409/429/503 are retried)."""
    h, b = binary(sdk_event(data, type_))
    for _ in range(tries):
        try:
            status, _, body = await post_event(session, url, h, b)
        except aiohttp.ClientError:  # a kept-alive connection the server closed: the broker retries
            await asyncio.sleep(0.05)
            continue
        if status == 200:
            return orjson.loads(body)
        if status == 202:
            return None
        assert status in (409, 429, 503), (status, body[:300])
        await asyncio.sleep(0.05)
    raise AssertionError("not delivered")


def increasing(xs: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(xs))


async def queued(target: str) -> int:
    from shared.integrations.lgsp.service import build
    from tests.conftest import TEST_ENV

    return {r["target"]: r["queued"] for r in await build(TEST_ENV).syncer.status()}[target]


async def test_order_kept_per_dossier_under_200_concurrent_out_of_order_changes(fleet, lgsp_sandbox):
    async with Receiver() as sink:
        procs = await fleet(sink.url)
        dossiers = [dossier_id() for _ in range(20)]
        changes = [change(d, v, "received" if v == 1 else "processing") for d in dossiers for v in range(1, 11)]
        random.Random(12).shuffle(changes)
        firsts = {}
        for c in changes:
            firsts.setdefault(c["dossier_id"], []).append(c["version"])
        assert any(not increasing(vs) for vs in firsts.values())  # the broker's order is not the versions'
        async with aiohttp.ClientSession() as s:
            replies = await asyncio.gather(*(deliver(s, procs[i % 2].url, c) for i, c in enumerate(changes)))
            await deliver(s, procs[0].url, {"job": "lgsp-drain"}, PING)
    states = [t["state"] for r in replies if r for t in r["targets"]]
    assert len(states) == 400 and "superseded" in states
    held = lgsp_sandbox["dvcqg"].dossiers
    docs = lgsp_sandbox["lgsp"].documents
    for d in dossiers:
        versions = [h["version"] for h in held[d]["history"]]
        steps = [p["version"] for p in held[d]["progress"]]
        assert increasing(versions) and versions[-1] == 10, (d, versions)
        assert increasing(steps) and steps[-1] == 10, (d, steps)
        assert held[d]["record"]["TrangThaiHoSo"] == "4"
        lv = [h["version"] for h in docs[d]["history"]]
        assert increasing(lv) and lv[-1] == 10, (d, lv)
    assert lgsp_sandbox["dvcqg"].duplicates == 0
    assert await queued("dvcqg") == 0 and await queued("lgsp") == 0


async def test_outage_of_dvcqg_with_1000_queued_changes_then_recovery(fleet, lgsp_sandbox):
    """A 10-minute outage, time compressed: one PingSource tick (`lgsp-drain`, each minute) every 0.1 s."""
    async with Receiver() as sink:
        procs = await fleet(sink.url, DVCI_DVCQG_RATE="500", DVCI_DVCQG_BURST="20")
        dossiers = [dossier_id() for _ in range(100)]
        changes = [change(d, v, "received" if v == 1 else "completed" if v == 10 else "processing")
                   for d in dossiers for v in range(1, 11)]
        random.Random(7).shuffle(changes)
        lgsp_sandbox["dvcqg"].faults = Faults(error_rate=1.0, status=503)
        async with aiohttp.ClientSession() as s:
            replies: list[dict[str, Any] | None] = []
            for minute in range(10):  # the outage: 100 changes a minute, a drain tick each minute
                batch = changes[minute * 100:(minute + 1) * 100]
                replies += await asyncio.gather(*(deliver(s, procs[i % 2].url, c) for i, c in enumerate(batch)))
                await deliver(s, procs[minute % 2].url, {"job": "lgsp-drain"}, PING)
                await asyncio.sleep(0.1)
            dv = [t["state"] for r in replies if r for t in r["targets"] if t["target"] == "dvcqg"]
            assert len(dv) == 1000 and set(dv) == {"queued"}
            assert await queued("dvcqg") == 100
            assert lgsp_sandbox["dvcqg"].dossiers == {}
            lgsp_sandbox["dvcqg"].faults = None  # recovery
            for minute in range(30):
                await asyncio.sleep(0.35)  # breaker cool-down
                await deliver(s, procs[minute % 2].url, {"job": "lgsp-drain"}, PING)
                if await queued("dvcqg") == 0:
                    break
    held = lgsp_sandbox["dvcqg"].dossiers
    assert await queued("dvcqg") == 0 and len(held) == 100
    for d in dossiers:
        assert [h["version"] for h in held[d]["history"]] == [10], d  # the latest state, once
        assert held[d]["record"]["TrangThaiHoSo"] == "9"
        assert [p["version"] for p in held[d]["progress"]] == list(range(1, 11)), d  # every step, in order
    sim = lgsp_sandbox["dvcqg"]
    assert sim.duplicates == 0 and max(sim.by_reference.values()) == 1  # nothing sent twice
    synced = {(e["data"]["dossier_id"], e["data"]["version"]) for e in sink.json()
              if e["headers"]["ce-type"] == "vn.gov.dvc.dossier.synced" and e["data"]["target"] == "dvcqg"}
    assert synced == {(d, 10) for d in dossiers}
    lags = [e["data"]["lag_s"] for e in sink.json() if e["headers"]["ce-type"] == "vn.gov.dvc.dossier.synced"]
    assert all(lag >= 0 for lag in lags)
    # LGSP stayed up the whole time: in order, ending at the latest version
    for d in dossiers:
        lv = [h["version"] for h in lgsp_sandbox["lgsp"].documents[d]["history"]]
        assert increasing(lv) and lv[-1] == 10
