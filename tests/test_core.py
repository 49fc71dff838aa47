"""The kind-neutral core: event digests, webhook verification, jobs, the outbox, the status book, the
provider registry — and a provider added to a kind from a test-only module (tests/extra_provider.py)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest
from aiohttp import web

from sandbox.base import Faults
from shared.reliability.keys import event_digest
from shared.security.webhooks import WebhookAuth, signed_headers, verify
from tests.conftest import free_port
from tests.helpers import Receiver, binary, sdk_event, sms
from tests.procs import FunctionServer, post_event


def test_event_digest_is_unambiguous_and_fixed():
    assert event_digest("/a\x00b", "c") != event_digest("/a", "b\x00c")
    assert event_digest("src", "X#0") != event_digest("src", "X", "#0")
    assert event_digest("s", "i") == event_digest("s", "i") and len(event_digest("s", "i", length=24)) == 24


@pytest.mark.parametrize("scheme", ["hmac-sha256", "token"])
def test_webhook_schemes_accept_signed_and_refuse_forged(scheme):
    auth = WebhookAuth("s3cret", scheme=scheme)
    body = b'{"x": 1}'
    good = {k.lower(): v for k, v in signed_headers(auth, body).items()}
    assert verify(auth, good, body, "203.0.113.9") is None
    assert verify(auth, {}, body, "203.0.113.9") is not None
    forged = {k: v + "0" if scheme == "token" else v.replace("v1=", "v1=0") for k, v in good.items()}
    assert verify(auth, forged, body, "203.0.113.9") is not None
    assert verify(WebhookAuth(None, scheme=scheme), good, body, "203.0.113.9") is not None  # no secret: refuse


def test_webhook_hmac_window_tamper_and_allow_list():
    auth = WebhookAuth("s3cret")
    body = b"payload"
    old = signed_headers(auth, body, now=time.time() - 3600)
    assert "window" in (verify(auth, old, body, None) or "")
    assert "match" in (verify(auth, signed_headers(auth, body), body + b"!", None) or "")
    listed = WebhookAuth(None, allow_ips=("10.1.0.0/16",))
    assert verify(listed, {}, body, "10.1.2.3") is None and verify(listed, {}, body, "10.2.0.1") is not None


async def test_webhook_body_limit_is_413_before_reading_all():
    from starlette.requests import Request

    from shared.security.webhooks import WebhookRefused, read_verified

    body = b"x" * 2048
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request({"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}, receive)
    with pytest.raises(WebhookRefused) as exc:
        await read_verified(request, WebhookAuth("s", max_body=1024))
    assert exc.value.status == 413


async def test_outbox_holds_coalesces_and_drains_oldest_first(redis):
    from shared.reliability.outbox import Outbox

    box = Outbox(redis, "dvci:test-outbox:{t}:box")
    await redis.delete(box.index, box.payloads)
    await box.add("a", b"a1", 100.0)
    await box.add("b", b"b1", 50.0)
    await box.add("a", b"a2", 200.0)  # coalesces: newest payload, earliest due time kept
    assert await box.size() == 2 and await box.oldest_due() == 50.0
    assert await box.due(75.0) == [("b", b"b1")]
    assert await box.due(1000.0) == [("b", b"b1"), ("a", b"a2")]
    await box.done("b")
    assert await box.due(1000.0) == [("a", b"a2")] and await box.get("b") is None


async def test_status_book_dedupes_never_regresses_and_keeps_terminal(redis):
    from shared.reliability.statusbook import StatusBook

    book = StatusBook(redis, {"created": 0, "in_transit": 1, "delivered": 2, "returned": 2},
                      terminal={"delivered", "returned"})
    key = "dvci:test-book:{t}:shipment-1"
    await redis.delete(key, key + ":history")
    assert (await book.apply(key, "e1", "in_transit", 2000, 60_000)).action == "changed"
    assert (await book.apply(key, "e1", "in_transit", 2000, 60_000)).action == "duplicate"
    late = await book.apply(key, "e0", "created", 1000, 60_000)  # older event: history only
    assert late.action == "stale" and await book.current(key) == "in_transit"
    done = await book.apply(key, "e2", "delivered", 3000, 60_000)
    assert done.action == "changed" and done.previous == "in_transit"
    assert (await book.apply(key, "e3", "returned", 4000, 60_000)).action == "final"
    assert [h["id"] for h in await book.history(key)] == ["e1", "e0", "e2", "e3"]


async def test_unknown_job_is_a_400_naming_the_jobs(send_sms):
    from shared.runtime.app import PING

    h, b = binary(sdk_event({"job": "no-such-job"}, PING))
    r = await send_sms.post("/", headers=h, content=b)
    assert r.status_code == 400 and "sms-advertising-drain" in r.json()["detail"]


# -- a provider joins a kind with no project file changed --------------------------------------------------
@pytest.fixture
async def kite_stack(redis, sandbox, tmp_path):
    from sandbox.server import build_app
    from shared.storage.redis import resolve_url
    from tests.extra_provider import SPEC

    sim = SPEC.new_simulator()
    port = free_port()
    runner = web.AppRunner(build_app([sim]))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    policy = tmp_path / "providers.yaml"
    policy.write_text("order: [viettel, kite]\nproviders:\n  viettel: {tps: 1000, burst: 100}\n"
                      "  kite: {tps: 1000, burst: 100}\n")
    async with Receiver() as sink:
        fn = await FunctionServer("send_sms", {
            "REDIS_URL": resolve_url(), "K_SINK": sink.url, "DVCI_SMS_POLICY_FILE": str(policy),
            "DVCI_SMS_EXTRA_PROVIDERS": "tests.extra_provider:SPEC",
            "DVCI_SMS_KITE_URL": f"http://127.0.0.1:{port}/kite"}).start()
        try:
            yield fn, sim, sink, port
        finally:
            fn.stop()
            await runner.cleanup()


@pytest.mark.slow
async def test_a_provider_from_a_test_module_is_routed_failed_over_to_and_gets_receipts(kite_stack, sandbox):
    fn, kite, sink, _port = kite_stack
    sandbox["viettel"].faults = Faults(error_rate=1.0, status=503)  # the first choice refuses: fail over
    h, b = binary(sdk_event(sms("0903000123")))
    async with aiohttp.ClientSession() as s:
        status, headers, raw = await post_event(s, fn.url, h, b)
    reply = orjson.loads(raw)
    assert status == 200 and headers["ce-type"] == "vn.gov.dvc.sms.accepted"
    assert reply["provider"] == "kite" and len(kite.messages) == 1
    assert [r["fault"] for r in sandbox["viettel"].requests] == ["status:503"]  # asked first, and refused
    # the simulator pushes a signed receipt to the webhook the registry entry declares
    kite.receipts.callback_url = fn.url + "dlr/kite"
    kite.receipts.secret = "kite-test-secret"
    ref = next(iter(kite.messages))
    assert await kite.deliver_receipt(ref, kite.messages[ref], "delivered", None, 1, 0) == 200
    for _ in range(50):
        if sink.json():
            break
        await asyncio.sleep(0.05)
    [update] = [e["data"] for e in sink.json()]
    assert update["status"] == "delivered" and update["provider"] == "kite"
    # a forged push is refused and emits nothing
    kite.receipts.secret = "wrong"
    assert await kite.deliver_receipt(ref, kite.messages[ref], "failed", None, 1, 0) == 401
    assert len(sink.json()) == 1


async def test_status_book_keeps_a_change_pending_until_its_emit_is_confirmed(redis):
    from shared.reliability.statusbook import StatusBook

    pending = "dvci:test-book:{t}:pending"
    book = StatusBook(redis, {"a": 0, "b": 1}, pending_key=pending)
    key = "dvci:test-book:{t}:subject-2"
    await redis.delete(key, key + ":history", pending)
    await book.apply(key, "e1", "a", 1000, 60_000, {"note": "first"})
    await book.apply(key, "e2", "b", 2000, 60_000)
    assert sorted(await book.unconfirmed(-1)) == [(key, "e1"), (key, "e2")]  # a crash here loses nothing
    await book.emitted(key, "e1")
    assert await book.unconfirmed(-1) == [(key, "e2")]
    entry, previous = await book.replay(key, "e2")
    assert entry["status"] == "b" and previous == "a"


async def test_object_store_put_signs_its_own_request_and_boto3_reads_it_back(moto_server, monkeypatch):
    """The fast PUT (botocore's SigV4 signer over the lean HTTP client) writes what boto3 reads: bytes, type,
    metadata, a non-ASCII key; without credentials it falls back to boto3 for good."""
    import boto3

    from shared.storage.objects import ObjectStore
    from tests.conftest import ensure_bucket

    ensure_bucket("dvci-core-objects")
    store = ObjectStore("dvci-core-objects", moto_server)
    etag = await store.put("nhãn/EB123456785VN đợt 1.pdf", b"%PDF-1.4 label", "application/pdf", {"carrier": "vnpost"})
    assert store._fast is True
    head = boto3.client("s3", endpoint_url=moto_server).head_object(Bucket="dvci-core-objects",
                                                                   Key="nhãn/EB123456785VN đợt 1.pdf")
    assert head["ETag"].strip('"') == etag and head["ContentType"] == "application/pdf"
    assert head["Metadata"] == {"carrier": "vnpost"}
    assert await store.get("nhãn/EB123456785VN đợt 1.pdf", 100) == b"%PDF-1.4 label"
    monkeypatch.setenv("DVCI_S3_FAST_PUT", "false")
    slow = ObjectStore("dvci-core-objects", moto_server)
    await slow.put("k2", b"x", "text/plain")
    assert slow._fast is False and await slow.get("k2", 10) == b"x"


def test_no_webhook_falls_back_to_a_published_sandbox_secret_outside_dev_and_test(monkeypatch):
    """Every provider webhook of every kind: without its secret, production refuses to start; dev/test use the
    simulator's published secret (issue 17, defect 22, at the registry rather than per kind)."""
    from shared.integrations.registry import all_specs, load

    specs = [s for s in all_specs() if s.webhook is not None]
    assert {s.name for s in specs} >= {"vnpt", "mobifone", "viettelpost", "smartca", "mysign"}
    for spec in specs:
        prefix = load(spec.settings).model_config.get("env_prefix", "")
        monkeypatch.delenv(f"{prefix}{spec.webhook.secret_field}".upper(), raising=False)
        with pytest.raises(RuntimeError, match="is not set"):
            spec.webhook_auth("production")
        assert spec.webhook_auth("dev").secret == spec.webhook.sandbox_secret != ""
        monkeypatch.setenv(f"{prefix}{spec.webhook.secret_field}".upper(), "a-real-secret")
        assert spec.webhook_auth("production").secret == "a-real-secret"
