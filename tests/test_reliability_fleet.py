"""Exactly-once effects across a fleet: several real server processes, real Redis, the sandbox over HTTP."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import pytest

from sandbox.base import Faults
from tests.conftest import POLICY
from tests.helpers import binary, sdk_event, sms
from tests.procs import FunctionServer, post_event

pytestmark = pytest.mark.slow


def fleet_env(**extra: str) -> dict[str, str]:
    from shared.storage.redis import resolve_url

    return {"REDIS_URL": resolve_url(), **extra}


def _sent(sandbox) -> int:
    """Send requests received by every SMS gateway together (a retry under the same reference counts too)."""
    return sum(sum(sim.by_reference.values()) for name, sim in sandbox.items()
               if name in ("viettel", "vnpt", "mobifone"))


@pytest.fixture
async def servers(redis, sandbox, request):
    started: list[FunctionServer] = []

    async def start(n: int = 2, **env: str) -> list[FunctionServer]:
        procs = [FunctionServer("send_sms", fleet_env(**env)) for _ in range(n)]
        await asyncio.gather(*(p.start() for p in procs))
        started.extend(procs)
        return procs

    yield start
    for p in started:
        p.stop()


async def test_50_concurrent_deliveries_across_2_processes_send_once(servers, sandbox):
    procs = await servers(2)
    sandbox["viettel"].faults = Faults(latency_ms=200)  # keep the first attempt in flight
    h, b = binary(sdk_event(sms()))
    async with aiohttp.ClientSession() as s:
        results = await asyncio.gather(*(post_event(s, procs[i % 2].url, h, b) for i in range(50)))
    statuses = [r[0] for r in results]
    assert set(statuses) <= {200, 409}, statuses
    ok = [r for r in results if r[0] == 200]
    assert ok, "at least the claiming delivery answers 200"
    assert len({r[1]["ce-id"] for r in ok}) == 1 and len({r[2] for r in ok}) == 1
    assert all("retry-after" in r[1] for r in results if r[0] == 409)
    assert _sent(sandbox) == 1  # one message, at whichever gateway took it (a slow CI may fail over)
    # after completion every further delivery replays the same reply
    async with aiohttp.ClientSession() as s:
        late = await asyncio.gather(*(post_event(s, p.url, h, b) for p in procs))
    assert {r[0] for r in late} == {200} and {r[2] for r in late} == {ok[0][2]}
    assert _sent(sandbox) == 1  # one message, at whichever gateway took it (a slow CI may fail over)


async def test_sigkill_after_provider_accepted_does_not_send_twice(servers, sandbox):
    a, b_ = await servers(2, DVCI_RELIABILITY_LEASE_MS="1500")
    # the provider takes the message, then never answers: the function is killed while waiting
    sandbox["viettel"].faults = Faults(timeout_rate=1.0, hang_s=5, count=1)
    h, body = binary(sdk_event(sms()))
    async with aiohttp.ClientSession() as s:
        first = asyncio.create_task(post_event(s, a.url, h, body))
        for _ in range(100):
            if sandbox["viettel"].messages:
                break
            await asyncio.sleep(0.02)
        assert len(sandbox["viettel"].messages) == 1
        a.kill()
        with pytest.raises(aiohttp.ClientError):
            await first
        # while the lease holds, a redelivery is told to retry later
        status, headers, _ = await post_event(s, b_.url, h, body)
        assert status == 409
        await asyncio.sleep(1.6)
        status, headers, _reply = await post_event(s, b_.url, h, body)
    assert status == 200 and headers["ce-type"] == "vn.gov.dvc.sms.accepted"
    assert len(sandbox["viettel"].messages) == 1  # the re-send carried the same RequestID
    assert sandbox["vnpt"].messages == {} and sandbox["mobifone"].messages == {}
    ref = next(iter(sandbox["viettel"].messages))
    assert sandbox["viettel"].by_reference[ref] == 2


async def test_breaker_is_shared_and_half_open_lets_one_probe_through(servers, sandbox, redis):
    a, b_ = await servers(2)
    sandbox["viettel"].faults = Faults(error_rate=1.0, status=503)
    async with aiohttp.ClientSession() as s:
        for _ in range(3):  # failure_threshold: 3 (tests' policy)
            h, body = binary(sdk_event(sms()))
            status, _headers, reply = await post_event(s, a.url, h, body)
            assert status == 200 and b'"provider":"vnpt"' in reply
        viettel_calls = len(sandbox["viettel"].requests)
        # the second process sees the open breaker: it does not even try Viettel
        h, body = binary(sdk_event(sms()))
        status, _, reply = await post_event(s, b_.url, h, body)
        assert status == 200 and b'"provider":"vnpt"' in reply
        assert len(sandbox["viettel"].requests) == viettel_calls
        state = await redis.hget(f"dvci:{os.environ['DVCI_ENV']}:{{sms}}:breaker:viettel", "state")
        assert state == b"open"

        await asyncio.sleep(0.5)  # cool-down (400 ms) over
        sandbox["viettel"].faults = Faults(latency_ms=300)  # healthy but slow: the probe stays in flight
        sandbox["viettel"].requests.clear()
        events = [binary(sdk_event(sms())) for _ in range(30)]
        results = await asyncio.gather(*(post_event(s, (a, b_)[i % 2].url, h, body)
                                         for i, (h, body) in enumerate(events)))
        assert {r[0] for r in results} == {200}
        assert len(sandbox["viettel"].requests) == 1  # exactly one probe fleet-wide
        providers = [b'"provider":"viettel"' in r[2] for r in results]
        assert sum(providers) == 1
        assert await redis.hget(f"dvci:{os.environ['DVCI_ENV']}:{{sms}}:breaker:viettel", "state") == b"closed"
        h, body = binary(sdk_event(sms()))
        status, _, reply = await post_event(s, b_.url, h, body)
        assert b'"provider":"viettel"' in reply
    transitions = await redis.xrange(f"dvci:{os.environ['DVCI_ENV']}:{{sms}}:breaker-events")
    changes = [(t[1][b"from"], t[1][b"to"]) for t in transitions]
    assert changes == [(b"closed", b"open"), (b"open", b"half_open"), (b"half_open", b"closed")]


async def test_rate_limit_holds_across_4_processes(servers, sandbox, tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY.read_text().replace("order: [viettel, vnpt, mobifone]", "order: [viettel]")
                      .replace("viettel: {tps: 1000, burst: 100,", "viettel: {tps: 50, burst: 1,"))
    procs = await servers(4, DVCI_SMS_POLICY_FILE=str(policy), DVCI_RELIABILITY_MAX_RATE_WAIT_MS="200")
    stop_at = time.monotonic() + 10.5
    counts = {"ok": 0, "429": 0, "other": 0}

    async def sender(s: aiohttp.ClientSession, url: str) -> None:
        while time.monotonic() < stop_at:
            h, body = binary(sdk_event(sms()))
            status, _, _ = await post_event(s, url, h, body)
            counts["ok" if status == 200 else "429" if status == 429 else "other"] += 1

    async with aiohttp.ClientSession() as s:
        await asyncio.gather(*(sender(s, p.url) for p in procs for _ in range(3)))
    stamps = sorted(r["at"] for r in sandbox["viettel"].requests)
    assert counts["other"] == 0, counts
    assert counts["429"] > 0  # the senders did push past the limit
    t0 = stamps[0] + 0.5
    window = [t for t in stamps if t0 <= t < t0 + 10]
    rate = len(window) / 10
    assert 45 <= rate <= 55, (rate, counts)


async def test_redis_down_means_no_sends_503_and_unready_then_recovers(sandbox):
    from tests.procs import RedisServer

    server = await RedisServer().start()
    fn = await FunctionServer("send_sms", {"REDIS_URL": server.url, "DVCI_REDIS_TIMEOUT_S": "0.3"}).start()
    try:
        async with aiohttp.ClientSession() as s:
            h, body = binary(sdk_event(sms()))
            assert (await post_event(s, fn.url, h, body))[0] == 200
            server.stop()
            sent_before = len(sandbox["viettel"].requests)
            for _ in range(5):
                h, body = binary(sdk_event(sms()))
                status, headers, _problem = await post_event(s, fn.url, h, body)
                assert status == 503 and "retry-after" in headers
            assert len(sandbox["viettel"].requests) == sent_before
            async with s.get(fn.url + "health/readiness") as r:
                assert r.status == 503
            server.proc = None
            restarted = RedisServer()
            restarted.port, restarted.url = server.port, server.url
            await restarted.start()
            try:
                async with s.get(fn.url + "health/readiness") as r:
                    assert r.status == 200
                h, body = binary(sdk_event(sms()))
                status, _, _ = await post_event(s, fn.url, h, body)
                assert status == 200
                assert len(sandbox["viettel"].requests) == sent_before + 1
            finally:
                restarted.stop()
    finally:
        fn.stop()
        server.stop()


async def test_sigterm_drains_in_flight_requests(servers, sandbox):
    (fn,) = await servers(1)
    sandbox["viettel"].faults = Faults(latency_ms=400)  # under the provider timeout (0.5 s in tests)
    h, body = binary(sdk_event(sms()))
    async with aiohttp.ClientSession() as s:
        in_flight = asyncio.create_task(post_event(s, fn.url, h, body))
        await asyncio.sleep(0.15)  # the request is at the provider
        import os
        import signal

        os.killpg(fn.proc.pid, signal.SIGTERM)  # what Kubernetes sends before stopping the pod
        status, headers, _reply = await in_flight
    assert status == 200 and headers["ce-type"] == "vn.gov.dvc.sms.accepted"
    assert len(sandbox["viettel"].messages) == 1
    fn.proc.wait(15)
    assert fn.proc.returncode is not None
