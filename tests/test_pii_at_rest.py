"""Citizen data at rest: after SMS (single, bulk, held advertising, receipts), e-mail (sent, suppressed) and
dead letters, every key and value in Redis — strings, hashes, streams, sorted sets, sets, lists — holds no
phone number, e-mail address or 12-digit id in clear (issue 17, defect 12)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import orjson

from tests.conftest import TEST_ENV

CE = {"content-type": "application/cloudevents+json"}
# bounded by non-word characters: a hex digest that happens to hold 12 digits is not a CCCD
_PII = re.compile(r"(?<![\w+-])(?:\+?84|0)(?:3|5|7|8|9)\d{8}(?![\w-])|[\w.+-]+@[\w-]+\.[\w.]+"
                  r"|(?<![\w-])\d{12}(?![\w-])")
PHONES = ["0912345678", "0987654321", "0903000011", "0981111222", "0982222333"]
EMAILS = ["citizen@example.vn", "cc.person@example.vn", "bounced@example.vn"]
CCCD = "001099012345"


def event(event_id: str, event_type: str, data: dict, **ext: str) -> bytes:
    return orjson.dumps({"specversion": "1.0", "id": event_id, "source": "/dvc/core", "type": event_type, **ext,
                         "data": data})


async def scan(redis) -> tuple[int, list[str]]:
    """Every value under this run's namespace, by type; returns (values seen, leaks)."""
    seen, leaks = 0, []

    def check(key: str, *values) -> None:
        nonlocal seen
        for v in values:
            text = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            seen += 1
            if _PII.search(text):
                leaks.append(f"{key}: {_PII.search(text).group(0)[:4]}… in {text[:120]!r}")

    async for raw in redis.scan_iter(match=f"dvci:{TEST_ENV}:*", count=1000):
        key = raw.decode()
        check("<key>", key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            check(key, await redis.get(key))
        elif kind == "hash":
            for f, v in (await redis.hgetall(key)).items():
                check(key, f, v)
        elif kind == "list":
            check(key, *await redis.lrange(key, 0, -1))
        elif kind == "set":
            check(key, *await redis.smembers(key))
        elif kind == "zset":
            check(key, *[m for m, _ in await redis.zrange(key, 0, -1, withscores=True)])
        elif kind == "stream":
            for _entry_id, fields in await redis.xrange(key):
                for f, v in fields.items():
                    check(key, f, v)
    return seen, leaks


async def test_no_citizen_data_in_clear_in_redis(send_sms, send_email, dead_letter, redis, sandbox):
    from shared.integrations.email.suppression import Suppressions
    from shared.integrations.sms.jobs import SmsJobs
    from shared.runtime import CloudEvent, EventContext, FunctionApp
    from shared.storage.redis import Keys

    keys = Keys(TEST_ENV)
    # SMS: single sends on every route (receipt correlation, Viettel's fail-sub lookup), a replay, a bulk
    replies = []
    for i, to in enumerate(PHONES[:3]):
        r = await send_sms.post("/", headers=CE, content=event(f"pii-{i}", "vn.gov.dvc.sms.send.requested",
                                                               {"to": to, "text": f"Ho so {CCCD} da tiep nhan"},
                                                               dossierid="H29.1"))
        assert r.status_code == 200 and r.json()["to"], r.text
        replies.append(r)
    again = await send_sms.post("/", headers=CE, content=event("pii-0", "vn.gov.dvc.sms.send.requested",
                                                               {"to": PHONES[0], "text": f"Ho so {CCCD} da tiep nhan"},
                                                               dossierid="H29.1"))
    # replayed from the (encrypted) record: byte for byte what the caller got the first time
    assert again.status_code == 200 and again.content == replies[0].content and again.json()["to"]
    bulk = await send_sms.post("/", headers=CE, content=event("pii-bulk", "vn.gov.dvc.sms.bulk.requested", {
        "recipients": [{"to": PHONES[3]}, {"to": PHONES[4]}], "text": "Thong bao lich hen"}))
    assert bulk.status_code == 200 and bulk.json()["accepted"] == 2, bulk.text
    # a held (Decree 91) advertising message
    jobs = SmsJobs(FunctionApp("pii-test"))
    held = CloudEvent(id="pii-ad", source="/dvc/core", type="vn.gov.dvc.sms.send.requested",
                      data={"to": PHONES[1], "text": "Khuyen mai", "category": "advertising"})
    await jobs.hold(EventContext(held, jobs.app, time.monotonic() + 5), datetime.now(UTC) + timedelta(hours=1))
    assert await jobs.schedule().size() == 1
    # e-mail: sent with a cc, one address suppressed
    r = await send_email.post("/", headers=CE, content=event("pii-mail", "vn.gov.dvc.email.send.requested", {
        "to": [EMAILS[0]], "cc": [EMAILS[1]], "subject": "Ho so", "text": f"CCCD {CCCD}"}))
    assert r.status_code == 200, r.text
    await Suppressions(redis, keys).add(EMAILS[2], "bounce", "test")
    assert await Suppressions(redis, keys).remove(EMAILS[2]) in (True, 1)
    await Suppressions(redis, keys).add(EMAILS[2], "bounce", "test")
    # a dead letter holding all of it
    r = await dead_letter.post("/", headers=CE, content=event("pii-dead", "vn.gov.dvc.sms.send.requested", {
        "to": PHONES[2], "email": EMAILS[0], "cccd": CCCD}, knativeerrorcode="400"))
    assert r.status_code == 202

    seen, leaks = await scan(redis)
    assert seen > 50  # the scan saw the run's state
    assert leaks == [], "\n".join(leaks[:20])

    # ... and what is stored is still usable: the dead letter and the held message decrypt
    from shared.reliability.deadletters import DeadLetterStore

    letters = await DeadLetterStore(redis, keys).list()
    assert letters[0].event["data"]["to"] == PHONES[2]
    from shared.security.crypto import default_crypto

    ((member, payload),) = await jobs.schedule().due((datetime.now(UTC) + timedelta(hours=2)).timestamp())
    opened = await default_crypto().decrypt(payload, b"sms.outbox:" + member.encode())
    assert orjson.loads(opened)["data"]["to"] == PHONES[1]


async def test_dead_letters_expire_and_large_events_are_capped(dead_letter, redis, monkeypatch):
    from shared.reliability.deadletters import DeadLetterSettings, DeadLetterStore
    from shared.storage.redis import Keys

    r = await dead_letter.post("/", headers=CE, content=event("big", "vn.gov.dvc.sms.send.requested",
                                                               {"to": PHONES[0], "text": "x" * 400_000}))
    assert r.status_code == 202
    store = DeadLetterStore(redis, Keys(TEST_ENV))
    (letter,) = await store.list()
    assert "data" not in letter.event and int(letter.event["dvcitruncated"]) > 400_000
    key = Keys(TEST_ENV).key("dlq", "letter", letter.id)
    assert 0 < await redis.ttl(key) <= DeadLetterSettings().ttl_s
    assert len(await redis.get(key)) < 4096  # capped, not 400 kB
