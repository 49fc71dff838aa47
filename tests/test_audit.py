"""The audit trail: a hash chain in Redis, sealed to S3 with Object Lock, verified end to end; every kind of
tampering is named; the pipeline's per-event records and operator commands end up in the chain."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import orjson
import pytest

from tests.conftest import MOTO, TEST_ENV, ensure_bucket

BUCKET = "dvci-audit-test"


@pytest.fixture(scope="session")
def audit_bucket(moto_server):
    return ensure_bucket(BUCKET, locked=True)


@pytest.fixture
def settings(audit_bucket):
    from shared.security.seal import AuditSettings

    env = f"{TEST_ENV}a{uuid.uuid4().hex[:6]}"  # a fresh archive prefix per test
    return AuditSettings(env=env, bucket=BUCKET, s3_endpoint_url=MOTO, retention_days=1, segment_max=4)


@pytest.fixture
def keys(settings):
    from shared.storage.redis import Keys

    return Keys(settings.env)


async def _records(redis, keys, n, action="test.action"):
    from shared.security.audit import Audit

    audit = Audit(redis, keys)
    return [await audit.record(actor="user:tester", action=action, kind="test", subject=f"s{i}",
                               detail={"i": i}) for i in range(n)]


async def test_record_hash_is_sha256_of_rfc8785_canonical_json(redis, keys):
    from shared.security.audit import GENESIS

    first, second = await _records(redis, keys, 2)
    assert (first["seq"], first["prev"]) == (1, GENESIS) and (second["seq"], second["prev"]) == (2, first["hash"])
    body = {k: v for k, v in first.items() if k != "hash"}
    # RFC 8785: keys sorted, no whitespace, UTF-8 as is
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    assert first["hash"] == hashlib.sha256(canonical).hexdigest()
    assert first["at"].endswith("+07:00")


async def test_concurrent_appends_make_one_contiguous_chain(redis, keys, settings):
    from shared.security.audit import Audit
    from shared.security.seal import verify

    audit = Audit(redis, keys)
    recs = await asyncio.gather(*(audit.record(actor="user:t", action="x", kind="t", subject=str(i))
                                  for i in range(40)))
    assert sorted(r["seq"] for r in recs) == list(range(1, 41))
    report = await verify(redis, keys, settings, archive=False)
    assert report.ok and report.live == 40, report.problem


async def test_seal_writes_locked_segments_signed_manifests_and_trims_redis(redis, keys, settings, audit_bucket):
    from shared.security.audit import Audit
    from shared.security.seal import seal, verify

    await _records(redis, keys, 10)
    out = await seal(redis, keys, settings)
    assert out == {"absorbed": 0, "segments": 3, "sealed": 10}  # segment_max 4: 4 + 4 + 2
    assert await redis.xlen(Audit(redis, keys).chain) == 0  # trimmed only after sealing
    listed = audit_bucket.list_objects_v2(Bucket=BUCKET, Prefix=f"audit/{settings.env}/")["Contents"]
    names = sorted(o["Key"].rsplit("/", 2)[-2] + "/" + o["Key"].rsplit("/", 1)[-1] for o in listed)
    assert names == ["manifests/000000000001.json", "manifests/000000000005.json", "manifests/000000000009.json",
                     "segments/000000000001.jsonl", "segments/000000000005.jsonl", "segments/000000000009.jsonl"]
    head = audit_bucket.head_object(Bucket=BUCKET, Key=f"audit/{settings.env}/segments/000000000005.jsonl")
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"]
    with pytest.raises(Exception, match=r"AccessDenied|locked|retention|WORM"):
        audit_bucket.delete_object(Bucket=BUCKET, Key=f"audit/{settings.env}/segments/000000000005.jsonl",
                                   VersionId=head["VersionId"])
    manifest = orjson.loads(audit_bucket.get_object(
        Bucket=BUCKET, Key=f"audit/{settings.env}/manifests/000000000005.json")["Body"].read())
    assert (manifest["first_seq"], manifest["last_seq"], manifest["count"]) == (5, 8, 4)
    assert manifest["previous"].endswith("manifests/000000000001.json") and manifest["alg"] == "ed25519"
    # the chain goes on in Redis after the sealed part, and verifies across both
    await _records(redis, keys, 3)
    report = await verify(redis, keys, settings)
    assert report.ok, report.problem
    assert (report.segments, report.sealed, report.live, report.checked) == (3, 10, 3, 13)
    assert (await seal(redis, keys, settings))["sealed"] == 3 and (await verify(redis, keys, settings)).ok


async def _rewrite_live(redis, keys, mutate):
    """Rewrite the live chain stream with `mutate(records) -> records` (what an attacker with Redis could do)."""
    from shared.security.audit import Audit, canonical

    audit = Audit(redis, keys)
    records = await audit.live()
    for r in records:
        r.pop("_id")
    records = mutate(records)
    await redis.delete(audit.chain)
    for i, r in enumerate(records, 1):
        await redis.xadd(audit.chain, {"r": canonical(r)}, id=f"{i}-1")


@pytest.mark.parametrize("tamper,expected", [
    ("modified", "record seq 3 modified"),
    ("modified_rehashed", "record seq 3 modified or replaced"),
    ("deleted", "record seq 3 deleted"),
    ("reordered", "record seq 4 out of order"),
    ("truncated", "live chain truncated: records after seq 4"),
])
async def test_verify_names_the_first_bad_live_record(redis, keys, settings, tamper, expected):
    from shared.security.audit import record_hash
    from shared.security.seal import verify

    await _records(redis, keys, 6)
    assert (await verify(redis, keys, settings, archive=False)).ok

    def mutate(records):
        if tamper == "modified":
            records[2]["detail"]["i"] = 99
        elif tamper == "modified_rehashed":
            records[2]["outcome"] = "denied"
            records[2]["hash"] = record_hash(records[2])
        elif tamper == "deleted":
            del records[2]
        elif tamper == "reordered":
            records[2], records[3] = records[3], records[2]
        elif tamper == "truncated":
            del records[4:]
        return records

    await _rewrite_live(redis, keys, mutate)
    report = await verify(redis, keys, settings, archive=False)
    assert not report.ok
    assert expected in report.problem, report.problem


async def test_verify_detects_a_replaced_segment_and_a_forged_manifest(redis, keys, settings, audit_bucket):
    from shared.security.audit import canonical, record_hash
    from shared.security.seal import verify

    await _records(redis, keys, 8)
    await seal(redis, keys, settings)
    seg = f"audit/{settings.env}/segments/000000000005.jsonl"
    lines = audit_bucket.get_object(Bucket=BUCKET, Key=seg)["Body"].read().splitlines()
    rec = orjson.loads(lines[1])
    rec["subject"] = "someone-else"
    rec["hash"] = record_hash(rec)
    lines[1] = canonical(rec)
    # Object Lock keeps the original version; a new version is what readers get
    audit_bucket.put_object(Bucket=BUCKET, Key=seg, Body=b"\n".join(lines) + b"\n")
    report = await verify(redis, keys, settings)
    assert not report.ok and "segments/000000000005.jsonl replaced" in report.problem
    assert report.bad_seq == 6

    # a manifest rewritten to match (without the audit signing key) is refused
    man = f"audit/{settings.env}/manifests/000000000005.json"
    m = orjson.loads(audit_bucket.get_object(Bucket=BUCKET, Key=man)["Body"].read())
    m["sha256"] = hashlib.sha256(b"\n".join(lines) + b"\n").hexdigest()
    audit_bucket.put_object(Bucket=BUCKET, Key=man, Body=orjson.dumps(m))
    report = await verify(redis, keys, settings)
    assert not report.ok and "manifests/000000000005.json is not signed" in report.problem


async def seal(redis, keys, settings):
    from shared.security.seal import seal as do_seal

    return await do_seal(redis, keys, settings)


async def test_pipeline_records_are_absorbed_into_the_chain_in_order(send_sms, redis, audit_bucket, monkeypatch):
    """Each SMS completion appends to `{sms}:audit` (hot path, unchanged); the seal job chains them."""
    from shared.security.audit import Audit
    from shared.security.seal import AuditSettings, seal, show, verify
    from shared.storage.redis import Keys

    keys = Keys(TEST_ENV)
    settings = AuditSettings(env=TEST_ENV, bucket=BUCKET, s3_endpoint_url=MOTO, retention_days=1)
    for i in range(3):
        r = await send_sms.post("/", headers={"content-type": "application/cloudevents+json"}, content=orjson.dumps({
            "specversion": "1.0", "id": f"audit-{i}", "source": "/dvc/core", "type": "vn.gov.dvc.sms.send.requested",
            "dossierid": f"H29.{i}", "data": {"to": "0912345678", "text": f"Ho so {i} da duoc tiep nhan"}}))
        assert r.status_code == 200, r.text
    source = keys.key("sms", "audit")
    assert await redis.xlen(source) == 3
    await Audit(redis, keys).record(actor="user:ops", action="breaker.open", kind="sms", subject="sms.vnpt")
    out = await seal(redis, keys, settings)
    assert out["absorbed"] == 3 and out["sealed"] == 4
    assert await redis.xlen(source) == 0  # absorbed: the hot-path buffer is emptied
    rows = await show(redis, keys, settings, action="provider.call")
    assert [r["kind"] for r in rows] == ["sms"] * 3 and all(r["actor"] == "service:sms" for r in rows)
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    assert all(r["detail"]["provider"] and r["outcome"] == "accepted" for r in rows)
    assert all("0912345678" not in orjson.dumps(r).decode() for r in rows)
    by_dossier = await show(redis, keys, settings, dossier="H29.1")
    assert len(by_dossier) == 1 and by_dossier[0]["detail"]["dossier_id"] == "H29.1"
    assert (await verify(redis, keys, settings)).ok


async def test_absorb_never_chains_an_entry_twice(redis, keys, monkeypatch):
    from shared.security.audit import Audit

    audit = Audit(redis, keys)
    source = keys.key("postal", "audit")
    for i in range(3):
        await redis.xadd(source, {"action": "label", "kind": "postal", "outcome": "ok", "n": str(i)})

    async def crash(*args):
        raise ConnectionError("killed after appending, before emptying the buffer")

    with monkeypatch.context() as m:
        m.setattr(redis, "xdel", crash)
        with pytest.raises(ConnectionError):
            await audit.absorb()
    assert await redis.xlen(source) == 3 and (await audit.head())[0] == 3
    assert await audit.absorb() == 0  # the cursor moved with the append: nothing is chained twice
    assert (await audit.head())[0] == 3 and await redis.xlen(source) == 0
    await redis.xadd(source, {"action": "label", "kind": "postal", "outcome": "ok", "n": "3"})
    assert await audit.absorb() == 1
    assert [r["detail"]["n"] for r in await audit.live()] == ["0", "1", "2", "3"]


async def test_operator_commands_are_chained_with_the_os_user(redis, monkeypatch, capsys):
    import getpass

    from dvci import cli
    from shared.security.seal import show
    from shared.storage.redis import Keys, resolve_url

    monkeypatch.setenv("REDIS_URL", resolve_url())
    keys = Keys(TEST_ENV)
    with pytest.raises(SystemExit):  # no free-text operator name: the OS user / ServiceAccount is recorded
        cli.build_parser().parse_args(["breaker", "open", "sms.vnpt", "--by", "made-up", "--reason", "maintenance"])
    with pytest.raises(SystemExit):  # a forced breaker needs a reason
        cli.build_parser().parse_args(["breaker", "open", "sms.vnpt"])
    args = cli.build_parser().parse_args(["breaker", "open", "sms.vnpt", "--reason", "maintenance"])
    assert await cli._breaker(args) == 0
    rows = await show(redis, keys, archive=False, action="breaker")
    assert len(rows) == 1
    assert rows[0]["actor"] == f"user:{getpass.getuser()}" and rows[0]["subject"] == "sms.vnpt"
    assert rows[0]["detail"]["reason"] == "maintenance" and rows[0]["action"] == "breaker.open"
    assert "made-up" not in orjson.dumps(rows).decode()


def _dvci(*argv: str) -> int:
    from dvci.cli import main

    return main(list(argv))


async def test_dvci_audit_verify_exit_codes(redis, monkeypatch, capsys, audit_bucket):
    from shared.security.audit import Audit
    from shared.storage.redis import Keys, resolve_url

    monkeypatch.setenv("REDIS_URL", resolve_url())
    env = f"{TEST_ENV}c{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("DVCI_ENV", env)
    monkeypatch.setenv("DVCI_AUDIT_BUCKET", BUCKET)
    keys = Keys(env)
    await _records(redis, keys, 5)
    assert await asyncio.to_thread(_dvci, "audit", "seal") == 0
    await _records(redis, keys, 2, action="dlq.replay")
    assert await asyncio.to_thread(_dvci, "audit", "verify", "--since", "1h") == 0
    out = capsys.readouterr().out
    assert "1 sealed segment(s), 5 sealed record(s), 2 live record(s), 7 in range" in out
    assert await asyncio.to_thread(_dvci, "audit", "show", "--action", "dlq", "--json") == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert [r["seq"] for r in shown] == [6, 7]
    await redis.xdel(Audit(redis, keys).chain, "6-1")
    assert await asyncio.to_thread(_dvci, "audit", "verify") == 1
    assert "record seq 6 deleted" in capsys.readouterr().err
