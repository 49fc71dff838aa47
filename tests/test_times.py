"""Every time in an event or a CLI/JSON output is RFC 3339 with its offset (shared/runtime/times.py)."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta, timezone

import aiohttp
import orjson
import pytest

from shared.runtime.times import VIETNAM, parse_time, to_rfc3339
from tests.helpers import Receiver, binary, sdk_event
from tests.procs import FunctionServer, post_event

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
EPOCH = datetime(2026, 11, 28, 5, 48, 56, tzinfo=VIETNAM).timestamp()


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-28 05:48:56", "2026-11-28T05:48:56+07:00"),         # VNPT DONE_TIME: Vietnam time, no offset
    ("20261128054856", "2026-11-28T05:48:56+07:00"),              # yyyyMMddHHmmss (LGSP style)
    ("28/11/2026 05:48:56", "2026-11-28T05:48:56+07:00"),         # day first
    ("2026-11-28T05:48:56+0700", "2026-11-28T05:48:56+07:00"),    # strftime %z
    ("2026-11-27T22:48:56Z", "2026-11-27T22:48:56Z"),             # an offset given is kept
    ("2026-11-27T22:48:56+00:00", "2026-11-27T22:48:56Z"),
    ("2026-11-28T05:48:56.120+07:00", "2026-11-28T05:48:56.120+07:00"),
    (EPOCH, "2026-11-28T05:48:56+07:00"),                         # epoch seconds (dead letters' first_at)
    (EPOCH + 0.25, "2026-11-28T05:48:56.250+07:00"),
    (int(EPOCH * 1000), "2026-11-28T05:48:56+07:00"),             # epoch milliseconds (breakers' opened)
    (str(EPOCH), "2026-11-28T05:48:56+07:00"),                    # epochs stored as Redis strings
    (datetime(2026, 11, 28, 5, 48, 56), "2026-11-28T05:48:56+07:00"),
    (datetime(2026, 11, 28, 5, 48, 56, tzinfo=timezone(timedelta(hours=-5))), "2026-11-28T05:48:56-05:00"),
])
def test_every_form_becomes_rfc3339_with_its_offset(value, expected):
    assert to_rfc3339(value) == expected
    assert RFC3339.fullmatch(to_rfc3339(value))
    assert parse_time(to_rfc3339(value)) == parse_time(value)  # the output reads back to the same instant


def test_unreadable_times_raise_or_are_now_when_lenient():
    with pytest.raises(ValueError, match="not a recognised time"):
        to_rfc3339("yesterday")
    got = datetime.fromisoformat(to_rfc3339("yesterday", lenient=True))
    assert abs((got - datetime.now(UTC)).total_seconds()) < 5 and got.utcoffset() == timedelta(hours=7)
    assert RFC3339.fullmatch(to_rfc3339(None)) and RFC3339.fullmatch(to_rfc3339(""))


def test_dead_letter_summary_times():
    from shared.reliability.deadletters import DeadLetter

    letter = DeadLetter("x", {"type": "t", "id": "1", "source": "s"}, None, 500, None, EPOCH, EPOCH + 60.5)
    s = letter.summary()
    assert (s["first_at"], s["last_at"]) == ("2026-11-28T05:48:56+07:00", "2026-11-28T05:49:56.500+07:00")
    assert orjson.loads(orjson.dumps(s))["first_at"] == s["first_at"]  # what `dvci dlq list --json` prints


@pytest.fixture
async def sink():
    async with Receiver() as r:
        yield r


@pytest.mark.slow
async def test_delivery_updated_at_from_a_provider_local_time_has_the_vietnam_offset(redis, sandbox, sink, tmp_path):
    from shared.storage.redis import resolve_url
    from tests.conftest import ROOT, SANDBOX

    policy = tmp_path / "providers.yaml"  # the packaged price table: VinaPhone numbers go to VNPT (on-net)
    policy.write_text((ROOT / "shared/integrations/sms/providers.yaml").read_text().replace("tps: 200", "tps: 1000"))
    fn = await FunctionServer("send_sms", {"REDIS_URL": resolve_url(), "K_SINK": sink.url,
                                           "DVCI_SMS_POLICY_FILE": str(policy)}).start()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{SANDBOX}/vnpt/_sandbox/receipts", json={
                    "callback_url": fn.url + "dlr/vnpt", "delay_ms": 50, "carrier": "vinaphone"}) as r:
                assert r.status == 200
            h, b = binary(sdk_event({"to": "0912000077", "text": "Ho so da co ket qua"}, dossierid="H29-7"))
            status, _, body = await post_event(s, fn.url, h, b)
            assert status == 200 and orjson.loads(body)["provider"] == "vnpt"
        before = time.time()
        updates: list[dict] = []
        for _ in range(100):
            updates = [e["data"] for e in sink.json() if e["headers"]["ce-type"] == "vn.gov.dvc.sms.delivery.updated"]
            if updates:
                break
            await asyncio.sleep(0.05)
        assert len(updates) == 1
        at = updates[0]["at"]
        assert RFC3339.fullmatch(at) and at.endswith("+07:00"), at
        # the sandbox writes DONE_TIME like VNPT, `YYYY-MM-DD hh:mm:ss` with no offset (read as Vietnam time)
        assert abs(parse_time(at).timestamp() - before) < 8 * 3600
    finally:
        fn.stop()
