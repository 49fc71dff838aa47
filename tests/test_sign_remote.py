"""Remote signing (VNPT SmartCA, Viettel MySign shapes) through sign_document running as real processes:
the sandbox plays the official (approve, reject, no answer), its signed callbacks reach /webhooks/<provider>
over HTTP, the `sign-poll` PingSource job asks for status and times out, K_SINK is captured here."""

from __future__ import annotations

import asyncio
import io
import uuid

import aiohttp
import boto3
import orjson
import pytest

from shared.integrations.signature.samples import sample_pdf
from shared.storage.redis import resolve_url
from tests.conftest import MOTO, SIGN_PKI_DIR
from tests.helpers import Receiver, binary, sdk_event
from tests.procs import FunctionServer, post_event

REQ = "vn.gov.dvc.document.sign.requested"
PING = "dev.knative.sources.ping"
BUCKET = "dvci-documents"
pytestmark = pytest.mark.slow


def put(data: bytes) -> str:
    key = f"inbox/{uuid.uuid4().hex}.pdf"
    boto3.client("s3", endpoint_url=MOTO).put_object(Bucket=BUCKET, Key=key, Body=data)
    return key


def get(key: str) -> bytes:
    return boto3.client("s3", endpoint_url=MOTO).get_object(Bucket=BUCKET, Key=key)["Body"].read()


def keys_under(prefix: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=MOTO)
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def request(method: str, dossier: str, level: str = "B-T") -> dict:
    return {"dossier_id": dossier, "document": {"s3_key": put(sample_pdf()), "content_type": "application/pdf"},
            "signer": {"method": method, "user_id": "001099012345"}, "level": level,
            "appearance": {"page": -1, "box": [320, 40, 580, 120]}}


async def send(session, fn: FunctionServer, data, type_=REQ, id_=None) -> tuple[int, dict[str, str], bytes]:
    h, b = binary(sdk_event(data, type_, id_=id_))
    return await post_event(session, fn.url, h, b)


async def wait_for(pred, timeout: float = 15.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = pred()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def validate(data: bytes):
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from shared.integrations.signature import certs

    vc = ValidationContext(trust_roots=certs.load_pem_bundle(SIGN_PKI_DIR / "root.pem"),
                           other_certs=certs.load_pem_bundle(SIGN_PKI_DIR / "chain.pem"), allow_fetching=True,
                           revocation_mode="hard-fail")
    try:
        return await async_validate_pdf_signature(PdfFileReader(io.BytesIO(data)).embedded_regular_signatures[0],
                                                  vc, ts_validation_context=vc)
    finally:
        await vc.aclose()


@pytest.fixture
async def remote(redis, signing_sandbox, documents_bucket):
    """A sign_document process with K_SINK captured; the sandboxes call back its webhooks."""
    async with Receiver() as sink:
        fn = await FunctionServer("sign_document", {"REDIS_URL": resolve_url(), "K_SINK": sink.url,
                                                    "DVCI_SIGN_REMOTE_TIMEOUT_S": "300"}).start()
        try:
            yield fn, sink, signing_sandbox
        finally:
            fn.stop()


async def test_smartca_approved_on_the_phone_completes_by_webhook(remote):
    fn, sink, sims = remote
    sims["smartca"].receipts.callback_url = fn.url + "webhooks/smartca"
    dossier = f"H29-{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as s:
        status, headers, body = await send(s, fn, request("smartca", dossier))
        assert status == 200 and headers["ce-type"] == "vn.gov.dvc.document.sign.pending", body
        pending = orjson.loads(body)
        assert pending["method"] == "smartca" and pending["expires_at"].endswith("+07:00")
        tx = pending["transaction_id"]
        assert list(sims["smartca"].messages) == [tx]  # the official was asked once
        assert keys_under(f"signed/{dossier}/") == []
        async with s.post(f"http://127.0.0.1:{_port()}/smartca/_sandbox/confirm",
                          json={"transaction_id": tx, "approve": True}) as r:
            assert (await r.json())["status"] == "signed"
    [got] = await wait_for(lambda: [e for e in sink.json() if e["headers"]["ce-type"] == "vn.gov.dvc.document.signed"])
    assert sims["smartca"].receipts_sent[-1]["callback_status"] == 200
    data = got["data"]
    assert data["dossier_id"] == dossier and data["level"] == "B-T" and data["timestamp_at"]
    assert "Nguyễn Văn Ký" in data["signer"]["subject"]
    signed = get(data["output_key"])
    status_ = await validate(signed)
    assert status_.intact and status_.valid and status_.trusted and status_.timestamp_validity.trusted
    assert keys_under(f"pending/{tx}") == [f"pending/{tx}.pdf"]  # the prepared placeholder, kept for audit


def _port() -> int:
    from tests.conftest import SIGN_SANDBOX_PORT

    return SIGN_SANDBOX_PORT


async def test_mysign_rejection_found_by_the_poll_job(remote):
    fn, sink, _sims = remote
    dossier = f"H29-{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as s:
        status, headers, body = await send(s, fn, request("mysign", dossier, level="B-B"))
        assert status == 200 and headers["ce-type"] == "vn.gov.dvc.document.sign.pending", body
        tx = orjson.loads(body)["transaction_id"]
        status, _, _ = await send(s, fn, {"job": "sign-poll"}, PING)  # still waiting: nothing happens
        assert status == 202 and sink.got == []
        async with s.post(f"http://127.0.0.1:{_port()}/mysign/_sandbox/confirm",
                          json={"transaction_id": tx, "approve": False}) as r:
            assert (await r.json())["status"] == "rejected"
        status, _, _ = await send(s, fn, {"job": "sign-poll"}, PING)
        assert status == 202
    [failed] = [e for e in sink.json() if e["headers"]["ce-type"] == "vn.gov.dvc.document.sign.failed"]
    assert failed["data"] == {"dossier_id": dossier, "reason": "user_rejected", "detail": "rejected"}
    assert failed["headers"]["ce-dossierid"] == dossier
    assert keys_under(f"signed/{dossier}/") == []


async def test_no_answer_in_time_is_user_timeout(redis, signing_sandbox, documents_bucket):
    async with Receiver() as sink:
        fn = await FunctionServer("sign_document", {"REDIS_URL": resolve_url(), "K_SINK": sink.url,
                                                    "DVCI_SIGN_REMOTE_TIMEOUT_S": "1"}).start()
        try:
            dossier = f"H29-{uuid.uuid4().hex[:8]}"
            async with aiohttp.ClientSession() as s:
                _status, headers, _ = await send(s, fn, request("smartca", dossier))
                assert headers["ce-type"] == "vn.gov.dvc.document.sign.pending"
                await asyncio.sleep(1.2)
                await send(s, fn, {"job": "sign-poll"}, PING)
                await send(s, fn, {"job": "sign-poll"}, PING)  # a second run emits nothing more
        finally:
            fn.stop()
    failed = [e for e in sink.json() if e["headers"]["ce-type"] == "vn.gov.dvc.document.sign.failed"]
    assert len({e["headers"]["ce-id"] for e in failed}) == 1 and len(failed) == 1
    assert failed[0]["data"]["reason"] == "user_timeout"


async def test_callbacks_must_be_authenticated(remote):
    fn, sink, _sims = remote
    async with aiohttp.ClientSession() as s:
        async with s.post(fn.url + "webhooks/smartca", json={"transaction_id": "x", "status": "signed"}) as r:
            assert r.status == 401
        async with s.post(fn.url + "webhooks/mysign", data=b"{}", headers={"x-dvci-signature": "t=1,v1=00"}) as r:
            assert r.status == 401
    assert sink.got == []


async def test_twenty_duplicate_deliveries_across_two_processes(redis, signing_sandbox, documents_bucket):
    """One confirmation request on the official's phone, one signed object, one `signed` event id."""
    async with Receiver() as sink:
        env = {"REDIS_URL": resolve_url(), "K_SINK": sink.url}
        a, b = FunctionServer("sign_document", env), FunctionServer("sign_document", env)
        await asyncio.gather(a.start(), b.start())
        try:
            signing_sandbox["smartca"].receipts.callback_url = a.url + "webhooks/smartca"
            dossier = f"H29-{uuid.uuid4().hex[:8]}"
            data = request("smartca", dossier)
            event_id = f"dup-{uuid.uuid4().hex}"

            async def deliver(fn: FunctionServer) -> bytes:
                async with aiohttp.ClientSession() as s:
                    for _ in range(200):  # what the broker does: 409/503 are retried
                        status, _headers, body = await send(s, fn, data, id_=event_id)
                        if status == 200:
                            return body
                        assert status in (409, 503), (status, body)
                        await asyncio.sleep(0.05)
                raise AssertionError("never completed")

            replies = await asyncio.gather(*(deliver(a if i % 2 else b) for i in range(20)))
            assert len(set(replies)) == 1
            tx = orjson.loads(replies[0])["transaction_id"]
            smartca = signing_sandbox["smartca"]
            assert list(smartca.messages) == [tx] and len(smartca.phone.transactions) == 1
            assert smartca.by_reference[tx] == 1  # asked once, not even re-sent
            async with aiohttp.ClientSession() as s, s.post(
                    f"http://127.0.0.1:{_port()}/smartca/_sandbox/confirm",
                    json={"transaction_id": tx, "approve": True}) as r:
                assert r.status == 200
            await wait_for(lambda: [e for e in sink.json() if e["headers"]["ce-type"].endswith("document.signed")])
            async with aiohttp.ClientSession() as s:  # a poll racing the webhook, and late redeliveries
                await asyncio.gather(send(s, b, {"job": "sign-poll"}, PING), send(s, a, data, id_=event_id))
            signed_events = [e for e in sink.json() if e["headers"]["ce-type"].endswith("document.signed")]
            assert len({e["headers"]["ce-id"] for e in signed_events}) == 1
            assert len(keys_under(f"signed/{dossier}/")) == 1
        finally:
            a.stop()
            b.stop()
