"""Reliability semantics in one process: failover rules, recipient limits, round trips, breaker modes,
operator controls — real Redis, the sandboxes over real HTTP."""

from __future__ import annotations

import asyncio
import os

import pytest

from sandbox.base import Faults
from shared.reliability.pipeline import Pipeline
from shared.reliability.policy import BreakerPolicy, IdempotencyConfig, ProviderPolicy, RateLimit
from shared.runtime import EventContext
from shared.runtime.errors import ProvidersUnavailable, RateLimited
from shared.runtime.events import CloudEvent
from shared.storage.redis import Keys, get_fast_redis
from tests.helpers import binary, sdk_event, sms

ENV = os.environ["DVCI_ENV"]


async def send(client, data=None, **kw):
    h, b = binary(sdk_event(data or sms(), **kw))
    return await client.post("/", headers=h, content=b)


async def test_viettel_503_everything_goes_through_vnpt(send_sms, sandbox):
    sandbox["viettel"].faults = Faults(error_rate=1.0, status=503)
    replies = [await send(send_sms) for _ in range(8)]
    assert {r.status_code for r in replies} == {200}
    assert {r.json()["provider"] for r in replies} == {"vnpt"}
    assert len(sandbox["vnpt"].messages) == 8 and sandbox["viettel"].messages == {}


async def test_viettel_timing_out_after_receipt_is_never_failed_over(send_sms, sandbox):
    sandbox["viettel"].faults = Faults(timeout_rate=1.0, hang_s=2)
    resp = await send(send_sms)
    assert resp.status_code == 503  # the broker retries later, to Viettel again
    assert "retry-after" in resp.headers
    assert sandbox["vnpt"].requests == [] and sandbox["mobifone"].requests == []
    assert len(sandbox["viettel"].messages) == 1  # it did take the message
    refs = list(sandbox["viettel"].by_reference.values())
    assert refs == [3]  # three attempts, one reference: the provider de-duplicates


async def test_redelivery_after_timeout_confirms_without_a_second_message(send_sms, sandbox):
    sandbox["viettel"].faults = Faults(timeout_rate=1.0, hang_s=2, count=3)
    event = sdk_event(sms())
    h, b = binary(event)
    assert (await send_sms.post("/", headers=h, content=b)).status_code == 503
    resp = await send_sms.post("/", headers=h, content=b)  # the broker's retry
    assert resp.status_code == 200 and resp.json()["provider"] == "viettel"
    assert len(sandbox["viettel"].messages) == 1 and sandbox["vnpt"].messages == {}


async def test_unconfirmed_after_max_tries_ends_outcome_unknown(send_sms, sandbox):
    sandbox["viettel"].faults = Faults(malformed_rate=1.0)
    event = sdk_event(sms())
    h, b = binary(event)
    statuses = []
    for _ in range(4):  # the broker's redeliveries, spaced past the breaker's cool-down
        statuses.append(await send_sms.post("/", headers=h, content=b))
        await asyncio.sleep(0.45)
    assert [r.status_code for r in statuses] == [503, 503, 503, 200]
    assert statuses[-1].headers["ce-type"] == "vn.gov.dvc.sms.failed"
    assert statuses[-1].json()["reason"] == "outcome_unknown"
    assert sandbox["vnpt"].requests == []
    again = await send_sms.post("/", headers=h, content=b)
    assert again.content == statuses[-1].content  # the outcome is final


async def test_mobifone_status_query_resolves_a_takeover(send_sms, sandbox, tmp_path, monkeypatch):
    from shared.integrations.sms import SmsMessage
    from shared.integrations.sms.mobifone import MobifoneSms

    client = MobifoneSms()
    msg = SmsMessage("84912345678", "x", "gsm7", 1, "ref-status-1", "DVC", "transactional")
    assert await client.status(msg) is None
    receipt = await client.send(msg)
    assert (await client.status(msg)).provider_message_id == receipt.provider_message_id
    assert sandbox["mobifone"].by_reference["ref-status-1"] == 1  # the status query sent nothing


async def test_recipient_limit_is_an_outcome_and_otp_is_separate(send_sms, sandbox):
    number = "0987000111"
    replies = [await send(send_sms, sms(to=number)) for _ in range(6)]
    assert [r.headers["ce-type"].rsplit(".", 1)[1] for r in replies] == ["accepted"] * 5 + ["failed"]
    assert replies[-1].json()["reason"] == "recipient_rate_limited"
    assert len(sandbox["viettel"].messages) == 5
    otp = await send(send_sms, sms(to=number, text="Ma OTP cua ban la 123456", category="otp"))
    assert otp.headers["ce-type"] == "vn.gov.dvc.sms.accepted"


async def test_two_round_trips_per_event(send_sms, sandbox, redis):
    from shared.integrations.sms.service import default_service

    for _ in range(3):  # warm: script loaded, connections open
        await send(send_sms)
    pipeline = default_service().pipeline
    before_rt = pipeline.round_trips
    stats_before = await redis.info("commandstats")
    n = 20
    for _ in range(n):
        assert (await send(send_sms)).status_code == 200
    stats_after = await redis.info("commandstats")
    calls = {k: v["calls"] - stats_before.get(k, {"calls": 0})["calls"] for k, v in stats_after.items()}
    calls.pop("cmdstat_info", None)
    scripts = calls.pop("cmdstat_evalsha", 0)
    inner = {k.removeprefix("cmdstat_"): v / n for k, v in calls.items() if v}
    print(f"\nRedis round trips per event: {(pipeline.round_trips - before_rt) / n:.2f} (client), "
          f"{scripts / n:.2f} EVALSHA/event (server); commands inside the scripts per event: {inner}")
    assert pipeline.round_trips - before_rt == 2 * n
    assert scripts == 2 * n
    assert "eval" not in inner  # the script stays cached: no EVAL fallback


def make_pipeline(redis, **policies: ProviderPolicy) -> Pipeline:
    return Pipeline(get_fast_redis(), Keys(ENV), "unit", policies, IdempotencyConfig(lease_ms=5000))


def ctx_for(i: int) -> EventContext:
    return EventContext(CloudEvent(id=f"u{i}", source="/unit", type="t", data={"i": i}), None, 1e12)  # type: ignore[arg-type]


async def test_failure_rate_breaker_mode(redis):
    pol = ProviderPolicy("p", None, BreakerPolicy(mode="rate", min_calls=10, failure_rate_pct=50, window_ms=60000,
                                                  cooldown_ms=60000))
    pipe = make_pipeline(redis, p=pol)
    outcomes = ["ok", "fail"] * 4 + ["ok", "fail"]  # 10 calls, 50% failures -> opens on the 10th
    for i, outcome in enumerate(outcomes):
        adm = await pipe.admit(ctx_for(i), ["p"])
        adm.result = ("p", outcome)  # type: ignore[assignment]
        await adm.complete(b'{"s":202,"h":{},"b":""}')
    with pytest.raises(ProvidersUnavailable):
        await pipe.admit(ctx_for(99), ["p"])


async def test_provider_rate_limit_delays_then_429(redis):
    pol = ProviderPolicy("p", RateLimit(2, 1.0, 1))  # 2/s, no burst
    pipe = Pipeline(get_fast_redis(), Keys(ENV), "unit", {"p": pol}, IdempotencyConfig(max_rate_wait_ms=600))
    first = await pipe.admit(ctx_for(1), ["p"])
    second = await pipe.admit(ctx_for(2), ["p"])
    assert first.wait_ms == 0 and 400 <= second.wait_ms <= 500  # reserved: wait in the request
    with pytest.raises(RateLimited) as exc:  # the third would wait ~1000 ms > 600 ms: 429 to the broker
        await pipe.admit(ctx_for(3), ["p"])
    assert exc.value.retry_after >= 1
    assert not await redis.exists(pipe.idem_key(ctx_for(3).event))  # nothing claimed when refused


async def test_operator_forces_breaker_and_it_is_recorded(send_sms, sandbox, redis, monkeypatch, capsys):
    from dvci import cli
    from shared.storage.redis import resolve_url

    monkeypatch.setenv("REDIS_URL", resolve_url())
    assert await cli._breaker(cli.build_parser().parse_args(["breaker", "open", "sms.viettel", "--reason", "m"])) == 0
    resp = await send(send_sms)
    assert resp.json()["provider"] == "vnpt" and sandbox["viettel"].requests == []
    assert await cli._breaker(cli.build_parser().parse_args(["breaker", "status", "--json"])) == 0
    out = capsys.readouterr().out
    from shared.security.audit import operator  # who is recorded: the OS user, not --by (issue 17)

    assert '"name": "sms.viettel"' in out and '"forced": "open"' in out and f'"forced_by": "{operator()}"' in out
    await cli._breaker(cli.build_parser().parse_args(["breaker", "auto", "sms.viettel", "--reason", "m"]))
    assert (await send(send_sms)).json()["provider"] == "viettel"
    events = await redis.xrange(f"dvci:{ENV}:{{sms}}:breaker-events")
    assert [e[1][b"to"] for e in events] == [b"forced-open", b"forced-auto"]
    assert all(e[1][b"by"] == operator().encode() for e in events)


async def test_redis_loading_after_a_restart_is_503_not_500():
    """A Redis that restarts answers LOADING while it reads its AOF: the event must be retried (503)."""
    from shared.runtime.errors import StateUnavailable
    from shared.storage.resp import RespError

    class Loading:  # the one module under test is the pipeline: a stub stands for the restarting server
        async def evalsha(self, *args):
            raise RespError("LOADING Redis is loading the dataset in memory")

    pipe = Pipeline(Loading(), Keys(ENV), "unit", {"p": ProviderPolicy("p")})  # type: ignore[arg-type]
    with pytest.raises(StateUnavailable, match="not ready"):
        await pipe.admit(ctx_for(1), ["p"])
