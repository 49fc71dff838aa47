"""Dead letters: the sink keeps them (decoding knativeerrordata defensively); dvci dlq lists, shows,
replays (recorded) and purges them."""

from __future__ import annotations

import base64

import pytest

from dvci import cli
from shared.reliability.deadletters import DeadLetterStore, decode_error_data
from shared.storage.redis import Keys
from tests.conftest import TEST_ENV
from tests.helpers import Receiver, binary, sdk_event


def test_decode_error_data_defensively():
    ok = decode_error_data(base64.b64encode(b'{"detail":"data.to: Field required"}').decode())
    assert ok["json"]["detail"] == "data.to: Field required"
    truncated = decode_error_data(base64.b64encode(b"x" * 2000).decode()[:1023])
    assert truncated["decoded"] and truncated["text"].startswith("xxx")
    garbage = decode_error_data("%%%not base64%%%")
    assert garbage["raw"] == "%%%not base64%%%"
    assert decode_error_data(None) is None


@pytest.fixture
async def broker_receiver():
    async with Receiver() as r:
        yield r


async def test_dead_letter_round_trip(dead_letter, redis, broker_receiver, monkeypatch, capsys):
    url, got = broker_receiver.url, broker_receiver.headers
    problem = b'{"status":400,"detail":"vn.gov.dvc.sms.send.requested data is invalid: data.to: Field required"}'
    ev = sdk_event({"text": "x"}, id_="bad-1", knativeerrordest="http://send-sms/", knativeerrorcode="400",
                   knativeerrordata=base64.b64encode(problem).decode())
    h, b = binary(ev)
    assert (await dead_letter.post("/", headers=h, content=b)).status_code == 202
    assert (await dead_letter.post("/", headers=h, content=b)).status_code == 202  # again: same letter

    store = DeadLetterStore(redis, Keys(TEST_ENV))
    letters = await store.list()
    assert len(letters) == 1
    letter = letters[0]
    assert letter.times == 2 and letter.error_code == 400 and letter.error_dest == "http://send-sms/"
    assert "knativeerrorcode" not in letter.event and letter.event["id"] == "bad-1"
    assert "Field required" in letter.summary()["reason"]

    monkeypatch.setenv("DVCI_BROKER_URL", url)
    from shared.storage.redis import resolve_url

    monkeypatch.setenv("REDIS_URL", resolve_url())
    assert await cli._dlq(cli.build_parser().parse_args(["dlq", "list", "--json"])) == 0
    assert "bad-1" in capsys.readouterr().out
    assert await cli._dlq(cli.build_parser().parse_args(["dlq", "replay", letter.id,
                                                                  "--reason", "fixed"])) == 0
    got = broker_receiver.headers
    assert len(got) == 1 and got[0]["ce-id"] == "bad-1" and "ce-knativeerrorcode" not in got[0]
    replayed = await store.get(letter.id)
    from shared.security.audit import operator
    from shared.security.seal import show

    # the operator is the OS user / ServiceAccount, never the typed --by (issue 17, defect 13)
    assert replayed.replays[0]["by"] == operator() and replayed.replays[0]["status"] == 202
    audit = await show(redis, Keys(TEST_ENV), archive=False, action="dlq.replay")
    assert audit[-1]["subject"] == letter.id and audit[-1]["actor"] == operator()

    assert await cli._dlq(cli.build_parser().parse_args(["dlq", "replay", "--all",
                                                                  "--reason", "again", "--force"])) == 0
    assert len(broker_receiver.headers) == 2
    assert await cli._dlq(cli.build_parser().parse_args(["dlq", "purge", letter.id, "--reason", "test data"])) == 0
    assert await store.list() == []
    with pytest.raises(SystemExit, match="no dead letter"):
        await cli._dlq(cli.build_parser().parse_args(["dlq", "show", letter.id]))
