"""Redis Cluster: a real 3-master cluster on loopback (tests/cluster.py). Slot routing and redirects of the
hot-path client, the reliability pipeline's per-event records spread over the shards with breakers and rate
limits still fleet-wide, the split steps' corner cases, and the reliability + fleet suites run against it."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys

import pytest
import redis as sync_redis

from shared.reliability.pipeline import Pipeline
from shared.reliability.policy import BreakerPolicy, IdempotencyConfig, ProviderPolicy, RateLimit
from shared.runtime.app import EventContext, Replayed
from shared.runtime.errors import EventInProgress, ProvidersUnavailable
from shared.runtime.events import CloudEvent
from shared.storage.cluster import ClusterClient, key_slot
from shared.storage.redis import Keys
from tests.cluster import RedisCluster3
from tests.conftest import ROOT, TEST_ENV

ENV = f"{TEST_ENV}c"
REPLY = b'{"s":202,"h":{},"b":""}'


@pytest.fixture(scope="module")
def cluster():
    with RedisCluster3() as c:
        yield c


@pytest.fixture
async def client(cluster):
    cluster.flush()
    c = ClusterClient(cluster.url, timeout_s=2.0)
    yield c
    await c.close()


def ctx_for(i: int | str, data: dict | None = None) -> EventContext:
    event = CloudEvent(id=f"c{i}", source="/cluster", type="t", data=data or {"i": i})  # type: ignore[arg-type]
    return EventContext(event, None, 1e12)  # type: ignore[arg-type]


def node_client(cluster: RedisCluster3, i: int) -> sync_redis.Redis:
    return sync_redis.Redis(host="127.0.0.1", port=cluster.ports[i])


def owner_of(cluster: RedisCluster3, key: str) -> str:
    slot = key_slot(key)
    for first, last, master, *_ in node_client(cluster, 0).execute_command("CLUSTER", "SLOTS"):
        if first <= slot <= last:
            return f"{master[0].decode()}:{master[1]}"
    raise LookupError(slot)


def placed(cluster: RedisCluster3, pipe: Pipeline, i: int | str, *, near: bool = False) -> EventContext:
    """An event whose idempotency record is on another master than the kind's state (the split steps), or
    with `near` on the same one (one script per step)."""
    home = owner_of(cluster, pipe.breaker_stream)
    for n in range(1000):
        ctx = ctx_for(f"{i}-{n}")
        if (owner_of(cluster, pipe.idem_key(ctx.event)) == home) == near:
            return ctx
    raise LookupError(i)


def commands(cluster: RedisCluster3, name: str) -> int:
    total = 0
    for i in range(3):
        stats = node_client(cluster, i).info("commandstats")
        total += stats.get(f"cmdstat_{name}", {}).get("calls", 0)
    return total


def test_key_slots_match_redis(cluster):
    r = node_client(cluster, 0)
    rng = random.Random(7)
    keys = ["foo", "{user1000}.following", "a{}b", "{}x", "x{y}z{w}", "dvci:dev:{sms}:breaker:viettel",
            *(f"dvci:e:{{sms:{rng.getrandbits(128):032x}}}:idem" for _ in range(200))]
    assert [key_slot(k) for k in keys] == [r.execute_command("CLUSTER", "KEYSLOT", k) for k in keys]


async def test_routes_by_slot_and_follows_moved(cluster, client):
    keys = [f"k{i}" for i in range(60)]
    for k in keys:
        assert await client.execute("SET", k, k) == b"OK"
    per_node = cluster.keys_per_node("k*")
    assert len(per_node) == 3 and all(n > 0 for n in per_node.values()), per_node
    # a stale map (every slot on the first master): each key elsewhere answers MOVED and is followed
    first = cluster.nodes[0]
    client._slots = [first] * 16384
    assert [await client.execute("GET", k) for k in keys] == [k.encode() for k in keys]
    assert client.redirects > 0
    assert {client.owner(k) for k in keys} == set(cluster.nodes)  # corrected slot by slot (and refreshed)


async def test_follows_ask_during_a_slot_migration(cluster, client):
    source = node_client(cluster, 0)
    key = next(f"m{i}" for i in range(10_000) if client.key_slot(f"m{i}") < 100)
    slot = client.key_slot(key)
    await client.execute("PING")
    assert client.owner(key) == cluster.nodes[0]
    target = node_client(cluster, 1)
    target_id, source_id = target.execute_command("CLUSTER", "MYID"), source.execute_command("CLUSTER", "MYID")
    target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    try:  # the key is not at the source any more: the source answers ASK, the client asks the target
        assert await client.execute("SET", key, "moved") == b"OK"
        assert client.redirects == 1
        assert client.owner(key) == cluster.nodes[0]  # ASK does not change the map
        script = "return redis.call('GET', KEYS[1])"
        assert await client.evalsha(script, [key], []) == b"moved"  # read back at the target, by ASK again
        assert client.redirects == 2
    finally:
        asking = target.pipeline(transaction=False)
        asking.execute_command("ASKING")
        asking.delete(key)
        asking.execute()
        for r in (source, target):
            r.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")


def make(client: ClusterClient, **policies: ProviderPolicy) -> Pipeline:
    return Pipeline(client, Keys(ENV), "unit", policies, IdempotencyConfig(lease_ms=5000, max_rate_wait_ms=600))


async def test_1000_events_spread_over_every_shard_with_one_breaker(cluster, client):
    pol = ProviderPolicy("p", RateLimit(100_000, 1.0, 10_000), BreakerPolicy(failure_threshold=5000))
    pipe = make(client, p=pol)
    assert pipe.split
    for i in range(1000):
        adm = await pipe.admit(ctx_for(i), ["p"])
        adm.result, adm.audit = ("p", "fail" if i % 2 else "ok"), {"n": i}
        await adm.complete(REPLY)
    idem = cluster.keys_per_node(f"dvci:{ENV}:{{unit:*}}:idem")
    assert sum(idem.values()) == 1000
    assert all(n >= 250 for n in idem.values()), idem  # ~333 each
    kind = cluster.keys_per_node(f"dvci:{ENV}:{{unit}}:*")
    assert sorted(kind.values()) == [0, 0, 3], kind  # breaker, rate limit, audit: one slot, one node
    home = sync_redis.Redis(host="127.0.0.1", port=int(next(n for n, c in kind.items() if c).rsplit(":", 1)[1]))
    assert home.xlen(f"dvci:{ENV}:{{unit}}:audit") == 1000
    assert home.hget(f"dvci:{ENV}:{{unit}}:breaker:p", "fails") == b"1"  # one breaker saw every call
    with pytest.raises(Replayed):  # and a redelivery replays the stored reply
        await pipe.admit(ctx_for(7), ["p"])


async def test_scripts_per_event_on_a_cluster(cluster, client):
    """Split steps: choose (kind slot) then claim (event slot); reply (event slot) alongside report + audit
    (kind slot): 4 scripts. A master serving both slots runs each step as one script: 2, as one node does."""
    pipe = make(client, p=ProviderPolicy("p"))
    await pipe.admit(ctx_for("warm"), ["p"])
    for near, per_event in ((False, 4), (True, 2)):
        before, trips = commands(cluster, "evalsha"), pipe.round_trips
        for i in range(20):
            adm = await pipe.admit(placed(cluster, pipe, f"{near}{i}", near=near), ["p"])
            adm.result, adm.audit = ("p", "ok"), {"n": i}
            await adm.complete(REPLY)
        assert pipe.round_trips - trips == per_event * 20
        assert commands(cluster, "evalsha") - before == per_event * 20
    with pytest.raises(Replayed):  # either way the record is where the next delivery looks
        await pipe.admit(placed(cluster, pipe, "True3", near=True), ["p"])
    with pytest.raises(Replayed):
        await pipe.admit(placed(cluster, pipe, "False3"), ["p"])


async def test_a_refused_claim_gives_back_the_rate_slot_it_took(cluster, client):
    pipe = make(client, p=ProviderPolicy("p", RateLimit(2, 1.0, 1)))  # 2/s, no burst
    first = await pipe.admit(placed(cluster, pipe, 1), ["p"])
    assert first.wait_ms == 0
    for _ in range(3):  # the same event in progress: choose took a slot, the claim refused, refund
        with pytest.raises(EventInProgress):
            await pipe.admit(placed(cluster, pipe, 1), ["p"])
    second = await pipe.admit(placed(cluster, pipe, 2), ["p"])
    assert 400 <= second.wait_ms <= 500  # one interval after the first, not four
    third = placed(cluster, pipe, 3)
    with pytest.raises(Exception, match="contract rate"):  # ~1000 ms > 600 ms: refused, nothing claimed
        await pipe.admit(third, ["p"])
    assert await client.execute("EXISTS", pipe.idem_key(third.event)) == 0


async def test_a_refused_claim_gives_back_a_half_open_probe(cluster, client):
    pol = ProviderPolicy("p", None, BreakerPolicy(failure_threshold=1, cooldown_ms=1, probe_lease_ms=60_000))
    pipe = make(client, p=pol)
    adm = await pipe.admit(placed(cluster, pipe, 1), ["p"])
    adm.result = ("p", "fail")
    await adm.release(RuntimeError())  # the breaker opens; its cool-down (1 ms) is over at once
    await asyncio.sleep(0.01)
    probe = await pipe.admit(placed(cluster, pipe, 2), ["p"])
    assert probe.probe
    with pytest.raises(EventInProgress):  # took the probe again? no: the probe is held by event 2...
        await pipe.admit(placed(cluster, pipe, 2), ["p"])
    with pytest.raises(ProvidersUnavailable):  # ...until its lease: one probe for the fleet
        await pipe.admit(placed(cluster, pipe, 3), ["p"])
    probe.result = ("p", "ok")
    await probe.complete(REPLY)
    assert not (await pipe.admit(placed(cluster, pipe, 4), ["p"])).probe  # closed again


async def test_a_takeover_goes_only_to_the_provider_the_previous_attempt_reached(cluster, client):
    pipe = Pipeline(client, Keys(ENV), "unit",
                    {"a": ProviderPolicy("a"), "b": ProviderPolicy("b", RateLimit(2, 1.0, 1))},
                    IdempotencyConfig(lease_ms=5000))
    adm = await pipe.admit(placed(cluster, pipe, 1), ["a", "b"])
    assert adm.provider == "a"
    adm.ambiguous = "a"  # a may have sent it
    await adm.release(RuntimeError())
    again = await pipe.admit(placed(cluster, pipe, 1), ["b", "a"])  # ranked differently: b would be chosen first
    assert (again.provider, again.takeover, again.tries) == ("a", True, 2)
    assert await client.execute("HGET", pipe.idem_key(placed(cluster, pipe, 1).event), "prov") == b"a"
    assert (await pipe.admit(placed(cluster, pipe, 2), ["b"])).wait_ms == 0  # the slot b's first choice took: back
    again.ambiguous = "a"
    await again.release(RuntimeError())
    with pytest.raises(ProvidersUnavailable):  # a is no candidate any more: never elsewhere
        await pipe.admit(placed(cluster, pipe, 1), ["b"])


async def test_a_stale_slot_map_falls_back_to_the_split_steps_without_side_effects(cluster, client):
    pipe = make(client, p=ProviderPolicy("p", RateLimit(2, 1.0, 1)))  # 2/s, no burst
    assert (await pipe.admit(ctx_for("warm"), ["p"])).wait_ms == 0  # slot map read; the first slot taken
    ctx = placed(cluster, pipe, 1)  # its record lives on another master...
    client._slots[key_slot(pipe.idem_key(ctx.event))] = client.owner(pipe.breaker_stream)  # ...the map says not
    adm = await pipe.admit(ctx, ["p"])  # one script tried at the kind's master: "non local key", nothing written
    assert 400 <= adm.wait_ms <= 500  # the second slot: the failed script took none
    record = pipe.idem_key(ctx.event)
    assert client.redirects >= 1 and client.owner(record) == owner_of(cluster, record)  # MOVED corrected it
    adm.result = ("p", "ok")
    await adm.complete(REPLY)
    with pytest.raises(Replayed):
        await pipe.admit(ctx, ["p"])


async def test_failover_records_the_next_provider_on_the_event(cluster, client):
    pipe = make(client, a=ProviderPolicy("a"), b=ProviderPolicy("b"))
    adm = await pipe.admit(placed(cluster, pipe, 1), ["a", "b"])
    assert await pipe.failover(adm, "a", ["b"]) == "b"
    assert await client.execute("HGET", pipe.idem_key(placed(cluster, pipe, 1).event), "prov") == b"b"
    adm.result = ("b", "ok")
    await adm.complete(REPLY)
    with pytest.raises(Replayed):
        await pipe.admit(placed(cluster, pipe, 1), ["a", "b"])


@pytest.mark.slow
def test_reliability_and_fleet_suites_pass_against_the_cluster(cluster):
    """The same tests as on one node, every process (pytest's and the function servers') on the cluster.
    The round-trip count test is one node's (two scripts); the cluster's is above (four)."""
    cluster.flush()
    for i in range(3):
        node_client(cluster, i).config_resetstat()
    env = {**os.environ, "REDIS_URL": cluster.url}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_reliability.py",
         "tests/test_reliability_fleet.py", "--deselect", "tests/test_reliability.py::test_two_round_trips_per_event"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout
    # every master ran reliability scripts (per-event claims spread; the tests clean their keys as they go)
    scripts = [node_client(cluster, i).info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
               for i in range(3)]
    assert all(n > 20 for n in scripts), scripts


async def test_the_gate_shares_the_breaker_on_a_cluster(cluster, client):
    """Calls outside events (drains, lookups) go through the same script on the kind's slot."""
    from shared.reliability.gate import Gate, GateClosed

    pol = ProviderPolicy("p", RateLimit(1000, 1.0, 10), BreakerPolicy(failure_threshold=1, cooldown_ms=60_000))
    gate = Gate(client, Keys(ENV), "unit", "p", pol)
    await gate.take(max_wait_ms=100)
    await gate.report(False)  # opens the breaker the pipeline reads too
    with pytest.raises(GateClosed):
        await gate.take(max_wait_ms=100)
    with pytest.raises(ProvidersUnavailable):
        await make(client, p=pol).admit(ctx_for(1), ["p"])


async def test_a_master_down_answers_503_fast_and_recovers(cluster, client):
    from shared.runtime.errors import StateUnavailable

    pipe = make(client, p=ProviderPolicy("p"))
    await pipe.admit(ctx_for("before"), ["p"])  # connections open, slot map read
    home = cluster.nodes.index(client.owner(pipe.breaker_stream))
    cluster.kill(home)  # the kind's shard: every admission needs it
    try:
        with pytest.raises(StateUnavailable):  # the broker retries; nothing is sent
            await asyncio.wait_for(pipe.admit(ctx_for("down"), ["p"]), timeout=5)
    finally:
        cluster.restart(home)
    adm = await pipe.admit(ctx_for("after"), ["p"])  # reconnected (state was not persisted: a fresh node)
    assert adm.provider == "p" and client.refreshes >= 2


def test_cluster_urls():
    from shared.storage.cluster import is_cluster_url, plain_url, seeds

    assert is_cluster_url("redis+cluster://a:1/0") and is_cluster_url("rediss+cluster://a:1")
    assert not is_cluster_url("redis://a:1/0") and not is_cluster_url(None) and not is_cluster_url("unix:///r.sock")
    assert seeds("rediss+cluster://u:p%40ss@r1.svc:7000,r2.svc:7001,[::1]:7002/0") == (
        "rediss", [("r1.svc", 7000), ("r2.svc", 7001), ("::1", 7002)], "u:p%40ss@")
    assert plain_url("redis+cluster://u:pw@r1:7000,r2:7001/0") == "redis://u:pw@r1:7000/0"
    with pytest.raises(ValueError, match="database 0"):
        ClusterClient("redis+cluster://r1:7000/3")
