"""Nothing lost while Redis is down: the dead_letter function fails closed (503), the local broker keeps the
dead letter on disk and hands it over again, also after the broker itself restarts."""

from __future__ import annotations

import asyncio

import pytest

from dvci import manifests as mf
from dvci.broker import Broker, Route
from dvci.spool import DeadLetterSpool
from shared.runtime.events import CloudEvent
from tests.helpers import Receiver
from tests.procs import FunctionServer, RedisServer

pytestmark = pytest.mark.slow


async def _letters(redis_url: str, env: str) -> list:
    import redis.asyncio as aioredis

    from shared.reliability.deadletters import DeadLetterStore
    from shared.storage.redis import Keys

    client = aioredis.Redis.from_url(redis_url)
    try:
        return await DeadLetterStore(client, Keys(env)).list()
    finally:
        await client.aclose()


async def _until(predicate, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def test_a_dead_letter_survives_a_redis_outage_and_a_broker_restart(tmp_path):
    redis = await RedisServer().start()
    env = "dlq-durability"
    dead_letter = await FunctionServer("dead_letter", {"REDIS_URL": redis.url, "DVCI_ENV": env}).start()
    delivery = mf.Delivery(retry=0, backoff_policy="exponential", backoff_delay_s=0.01)
    trigger = mf.TriggerSpec("t", "dvci", {"type": "a.requested"}, [], {"ref": {"kind": "Service", "name": "fn"}},
                             delivery)

    async def quick(_s: float) -> None:
        await asyncio.sleep(0.05)

    spool_path = tmp_path / "spool.sqlite"
    try:
        async with Receiver(status=400) as subscriber:  # a subscriber that refuses the event for good
            routes = [Route(trigger, subscriber.url, dead_letter.url)]
            broker = Broker(routes, sleep=quick, spool=DeadLetterSpool(spool_path), spool_interval_s=0.1)
            redis.stop()  # the dead_letter function cannot store anything now: 503
            record = broker.publish(CloudEvent(id="lost-1", source="/test", type="a.requested", data={"k": 1}))
            await broker.drain()
            assert record.deliveries[0].outcome == "dead-letter-spooled" and not record.done()
            assert DeadLetterSpool(spool_path).size() == 1
            broker.close_spool()  # dvci dev stops while Redis is still down

            await redis.start()  # Redis is back (empty: no persistence in this test)
            again = Broker(routes, sleep=quick, spool=DeadLetterSpool(spool_path), spool_interval_s=0.1)
            assert again.resume_spool() == 1

            async def stored() -> bool:
                return DeadLetterSpool(spool_path).size() == 0 and \
                    [letter.event["id"] for letter in await _letters(redis.url, env)] == ["lost-1"]

            await _until(stored)
            again.close_spool()
    finally:
        dead_letter.stop()
        redis.stop()
