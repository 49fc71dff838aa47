"""Property tests (hypothesis) over every event model of every function and every webhook, in-process against
the functions' ASGI apps with the real sandboxes, Redis and moto (fuzz/properties.py has the invariants):
no 500, no traceback in a body; every event ends as a reply, a 202, or a 4xx problem+json that the
dead_letter sink takes and stores; webhooks: random bodies/headers -> 401/403/413, signed garbage -> never 500.

`make test` runs a short pass (DVCI_FUZZ_EXAMPLES, default 25 per property); `python -m fuzz` runs the same
properties for a time budget (DVCI_FUZZ_SECONDS per property)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fuzz import properties
from tests.conftest import TEST_ENV, asgi_client

FUNCTIONS = ["send_sms", "send_email", "postal_create", "postal_track", "lgsp_sync", "sign_document", "dead_letter"]
WEBHOOKS = ["send_sms", "send_email", "postal_track", "sign_document"]


def _poster(client: httpx.AsyncClient) -> properties.Post:
    async def post(headers: list[tuple[bytes, bytes]], body: bytes, path: str) -> tuple[int, Any, bytes]:
        resp = await client.post(path, headers=headers, content=body)
        return resp.status_code, resp.headers, resp.content

    return post


def _app(folder: str) -> Any:
    import importlib

    return importlib.import_module(f"functions.{folder}.main").app


def _all_types() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for folder in FUNCTIONS:
        out.update(properties.event_types(_app(folder)))
    return out


def webhook_auths(folder: str) -> dict[str, Any]:
    """The authentication of every signed route of `folder` (as the providers, or the sandboxes, sign)."""
    from shared.integrations.registry import all_specs

    auths = {s.webhook.path: s.webhook_auth() for s in all_specs() if s.webhook is not None}
    return {path: auths[path] for _, path in _app(folder).routes if path in auths and auths[path].secret}


@pytest.fixture
async def fuzz_env(redis, sandbox, moto_server, postal_sandbox, lgsp_sandbox, signing_sandbox, documents_bucket):
    """Every sandbox up (each function's providers answer) and the dead_letter sink's store."""
    from shared.reliability.deadletters import DeadLetterStore
    from shared.storage.redis import Keys, get_redis

    async with asgi_client("dead_letter") as dead_letter:
        yield _poster(dead_letter), DeadLetterStore(get_redis(), Keys(TEST_ENV))


@pytest.mark.parametrize("folder", FUNCTIONS)
async def test_every_event_ends_as_a_reply_a_202_or_a_dead_lettered_4xx(folder, fuzz_env):
    dead_letter, store = fuzz_env
    app = _app(folder)
    async with asgi_client(folder) as client:
        stats = await properties.fuzz_events(
            app, _poster(client), dead_letter, store, max_examples=properties.examples(25),
            seconds=properties.budget_s(), types=_all_types() if app.takes_any else None)
    print(f"{folder}: {stats.examples} examples, statuses {dict(sorted(stats.statuses.items()))}, "
          f"{stats.dead_lettered} dead-lettered")
    assert stats.examples > 0


@pytest.mark.parametrize("folder", WEBHOOKS)
async def test_webhooks_refuse_random_requests_and_never_fail(folder, fuzz_env):
    app = _app(folder)
    auths = webhook_auths(folder)
    async with asgi_client(folder) as client:
        stats = await properties.fuzz_webhooks(app, _poster(client), auths,
                                               max_examples=properties.examples(25), seconds=properties.budget_s())
    print(f"{folder} webhooks: {stats.examples} examples, statuses {dict(sorted(stats.statuses.items()))}")
    assert stats.examples > 0
    if auths:  # signed requests got past authentication at least once
        assert set(stats.statuses) - {401, 403, 413}, stats.statuses


# -- findings of the fuzzers, each a regression test ---------------------------------------------------------
async def test_a_dead_lettered_ping_is_kept_not_run_by_the_dead_letter_sink(dead_letter):
    """Found by the event property: a PingSource tick that another function refused (unknown job: 400) is
    dead-lettered by the broker; the dead_letter sink has a job of its own (audit-seal), so it took the tick
    as *its* ping, answered 400 "no scheduled job", and the broker dropped the letter: lost."""
    from shared.reliability.deadletters import DeadLetterStore
    from shared.reliability.keys import event_digest
    from shared.storage.redis import Keys, get_redis

    headers = {"ce-specversion": "1.0", "ce-id": "tick-1", "ce-source": "/apis/v1/namespaces/dvci/pingsources/x",
               "ce-type": "dev.knative.sources.ping", "content-type": "application/json",
               "ce-knativeerrorcode": "400", "ce-knativeerrordest": "http://send-sms.dvci.svc/"}
    resp = await dead_letter.post("/", headers=headers, content=b'{"job":"sms-advertising-drain"}')
    assert resp.status_code == 202, resp.text
    letter = await DeadLetterStore(get_redis(), Keys(TEST_ENV)).get(
        event_digest("/apis/v1/namespaces/dvci/pingsources/x", "tick-1", length=16))
    assert letter is not None and letter.error_code == 400


async def test_a_dead_lettered_binary_event_whose_data_is_not_json_is_kept(dead_letter):
    """Found by the event property: a binary-mode event whose body is not JSON (not UTF-8) under a JSON
    content type is refused by its function (400) and dead-lettered by the broker, which forwards data as
    opaque bytes; the dead_letter sink refused it too (400 "not valid JSON"), so the letter was lost."""
    from shared.reliability.deadletters import DeadLetterStore
    from shared.reliability.keys import event_digest
    from shared.storage.redis import Keys, get_redis

    headers = {"ce-specversion": "1.0", "ce-id": "bad-json-1", "ce-source": "/dvc/core",
               "ce-type": "vn.gov.dvc.postal.quote.requested", "content-type": "application/json",
               "ce-knativeerrorcode": "400"}
    body = b'{"recipient": "\xff\xfe\x00 Ph\xf4"}'
    resp = await dead_letter.post("/", headers=headers, content=body)
    assert resp.status_code == 202, resp.text
    letter = await DeadLetterStore(get_redis(), Keys(TEST_ENV)).get(event_digest("/dvc/core", "bad-json-1", length=16))
    assert letter is not None and letter.error_code == 400


@pytest.mark.parametrize("provider,body", [
    ("smartca", b'{"transaction_id":"t","status":"signed","signed_files":[{"signatur_vealue":"YQ=="}]}'),
    ("smartca", b'{"transaction_id":"t","status":"signed","signed_files":"abc"}'),
    ("mysign", b'{"document_id":"t","status":"1","signatures":[]}'),
])
async def test_a_signed_but_malformed_signing_callback_is_400_not_500(provider, body, sign_document):
    """Found by the atheris harness (signing_callbacks): an authentic SmartCA/MySign callback saying "signed"
    without a signature value raised ProviderAmbiguous (or AttributeError for a non-list `signed_files`)
    out of the route: 500, and the provider retries it forever."""
    from shared.integrations.signature.providers import REGISTRY
    from shared.security.webhooks import signed_headers

    headers = {"content-type": "application/json", **signed_headers(REGISTRY.get(provider).webhook_auth(), body)}
    resp = await sign_document.post(f"/webhooks/{provider}", headers=headers, content=body)
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_an_undecodable_viettel_bulk_reply_is_ambiguous_not_a_crash():
    """Found by the atheris harness (viettel_soap_reply): a wsCpMt4 reply whose <details> is not UTF-8 raised
    UnicodeDecodeError out of send_many (a 500 after the messages may have gone out) instead of an ambiguous
    provider answer (retried under the same references); getFailSub likewise."""
    from shared.integrations import transport
    from shared.integrations.sms import SmsMessage
    from shared.integrations.sms.viettel import ViettelSms
    from shared.reliability.errors import ProviderAmbiguous, ProviderError

    payloads = iter([
        b"<return><details>O\xe5</details><msgId>r0</msgId><receiver>1</receiver></return>",
        b"<errCode>0</errCode><total>1</total><failSub><message>\xe5</message><receiver>8491\xff</receiver></failSub>",
    ])

    async def fake(*args, **kwargs):
        return 200, next(payloads)

    msgs = [SmsMessage(to="84912345678", text="x", encoding="gsm7", segments=1, reference=f"r{i}",
                       brandname="DVCQG", category="transactional") for i in range(1)]
    original, transport.request = transport.request, fake
    try:
        client = ViettelSms()
        out = await client.send_many(msgs)
        assert isinstance(out["r0"], ProviderError)  # the provider's (undecodable) refusal, as text
        total, subs = await client.fail_subs("20261128")
        assert total == 1 and len(subs) == 1
    except ProviderAmbiguous:
        pass
    finally:
        transport.request = original
