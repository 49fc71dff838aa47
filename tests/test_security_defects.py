"""Regression tests of the security defects of issue 17 ("Defects found" 1-22; 12 belongs to the encryption
work). Each test reproduces its defect as the probe did: over the function's HTTP surface (functions-framework's
ASGI app), the sandboxes and real Redis/moto, or the unit at fault."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import httpx
import orjson
import pytest

from tests.conftest import ROOT, TEST_ENV
from tests.helpers import Receiver, binary, random_number, sdk_event, sms

EMAIL = "vn.gov.dvc.email.send.requested"
PARAMS = {"citizen_name": "Nguyễn Văn An", "dossier_id": "H29-1", "procedure": "Cấp phép",
          "received_at": "27/11/2026 09:15", "expected_at": "11/12/2026"}


def provider_requests(sandbox) -> int:
    return sum(len(sim.requests) for sim in sandbox.values())


def email_request(**kw):
    data = {"to": ["citizen@example.vn"], "template": "dossier_received", "locale": "vi", "params": PARAMS}
    data.update(kw)
    return data


async def post_structured(client, event_dict: dict, path: str = "/", deep: int = 0) -> httpx.Response:
    body = orjson.dumps(event_dict)
    if deep:  # a value nested deeper than orjson writes (254): spliced into the JSON text
        body = body.replace(b'"@deep@"', b"[" * deep + b'"x"' + b"]" * deep)
    return await client.post(path, headers={"content-type": "application/cloudevents+json"}, content=body)


def event_dict(data, type_="vn.gov.dvc.sms.send.requested", **attrs) -> dict:
    out = {"specversion": "1.0", "id": attrs.pop("id", f"t-{time.time_ns()}"), "source": "/dvc/core/test",
           "type": type_, "datacontenttype": "application/json", "data": data}
    out.update(attrs)
    return out


# -- 1. redaction is linear; attributes bounded before anything is logged or stored -----------------------
def test_defect_01_redaction_is_linear_in_the_input():
    """1 MB of one character class per case, under a CPU-time limit a quadratic scan cannot meet (hours)."""
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (20, 20))\n"
        "from shared.observability.logs import redact\n"
        "n = 1_000_000\n"
        "for text in ('a' * n, 'a.' * (n // 2), '0' * n, '0 ' * (n // 2), 'a@' * (n // 2), '@a' * (n // 2)):\n"
        "    redact(text)\n"
        "print(redact('mail citizen@example.vn 0912345678 012345678901'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"redaction did not finish within 20 s of CPU: {done.returncode} {done.stderr[-300:]}"
    assert done.stdout.strip() == "mail c***@example.vn 8491****678 <cccd>"


async def test_defect_01_oversized_attributes_are_refused_before_any_effect(send_sms, sandbox):
    resp = await post_structured(send_sms, event_dict(sms(), id="x" * 20_000))
    assert resp.status_code == 400 and "id" in resp.text
    resp = await post_structured(send_sms, event_dict(sms(), dossierid="d" * 20_000))
    assert resp.status_code == 400
    assert provider_requests(sandbox) == 0


# -- 2. a non-ASCII extension never turns into a 500 after the effect ------------------------------------
async def test_defect_02_non_ascii_extension_is_encoded_and_the_effect_happens_once(send_sms, sandbox):
    ev = event_dict(sms(), dossierid="Hồ sơ H29.1")
    first = await post_structured(send_sms, ev)
    again = await post_structured(send_sms, ev)
    assert first.status_code == again.status_code == 200, first.text
    assert first.content == again.content
    assert unquote(first.headers["ce-dossierid"]) == "Hồ sơ H29.1"  # percent-encoded (CloudEvents HTTP binding)
    assert sum(sandbox["viettel"].by_reference.values()) == 1


async def test_defect_02_percent_encoded_binary_headers_are_decoded(send_sms, sandbox):
    h, b = binary(sdk_event(sms(), dossierid="H%E1%BB%93 s%C6%A1"))
    resp = await send_sms.post("/", headers=h, content=b)
    assert resp.status_code == 200 and unquote(resp.headers["ce-dossierid"]) == "Hồ sơ"


# -- 3. CR/LF in an extension: 400 before the effect ---------------------------------------------------------
@pytest.mark.parametrize("value", ["H29\r\nx-evil: 1", "H29\nX", "H29\x00", "H29\x7f"])
async def test_defect_03_control_characters_in_attributes_are_refused(send_sms, sandbox, value):
    resp = await post_structured(send_sms, event_dict(sms(), dossierid=value))
    assert resp.status_code == 400
    resp = await post_structured(send_sms, event_dict(sms(), subject=value))
    assert resp.status_code == 400
    assert provider_requests(sandbox) == 0


# -- 4. JSON depth: what is parsed can be written; the dead-letter sink keeps the event ----------------------
def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [100, 260, 1000])
async def test_defect_04_deep_json_is_400_not_500(send_sms, sandbox, depth):
    data = {**sms(), "params": {"deep": "@deep@"}}
    resp = await post_structured(send_sms, event_dict(data), deep=depth)
    assert resp.status_code == 400 and "depth" in resp.text
    h, _ = binary(sdk_event(sms()))
    resp = await send_sms.post("/", headers=h, content=b'{"to": "0912345678", "p": ' + b"[" * depth + b"1"
                               + b"]" * depth + b', "text": "x"}')
    assert resp.status_code == 400
    assert provider_requests(sandbox) == 0


async def test_defect_04_dead_letter_sink_keeps_a_deep_event(dead_letter, redis):
    from shared.reliability.deadletters import DeadLetterStore
    from shared.storage.redis import Keys

    ev = event_dict({"deep": "@deep@"}, id="deep-1", knativeerrorcode="400")
    resp = await post_structured(dead_letter, ev, deep=600)
    assert resp.status_code == 202, resp.text
    letters = await DeadLetterStore(redis, Keys(TEST_ENV)).list()
    assert [x.event["id"] for x in letters] == ["deep-1"]


def test_defect_04_parse_limit_is_within_what_can_be_written():
    from shared.runtime.events import parse_http
    from shared.runtime.settings import LimitSettings

    limit = LimitSettings().json_depth
    ok = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": nested(limit - 2)}
    event = parse_http({"content-type": "application/cloudevents+json"}, orjson.dumps(ok))
    orjson.dumps(event.to_dict())  # what was accepted can be written back
    with pytest.raises(ValueError):
        LimitSettings(json_depth=300)  # never above what orjson writes (254)


# -- 5. send_email: header injection and out-of-range times --------------------------------------------------
@pytest.mark.parametrize("data", [
    email_request(template=None, subject="Ho so\r\nBcc: attacker@example.com", text="x"),
    email_request(attachments=[{"s3_key": "a.pdf", "filename": "a.pdf\r\nX-Evil: 1"}]),
    email_request(attachments=[{"s3_key": "a.pdf", "filename": "a.pdf", "content_type": "text/plain\r\nX: y"}]),
])
async def test_defect_05_crlf_in_subject_filename_content_type_is_400(send_email, sandbox, data):
    resp = await post_structured(send_email, event_dict(data, EMAIL))
    assert resp.status_code == 400
    assert sandbox["smtp"].requests == []


async def test_defect_05_crlf_in_a_param_that_lands_in_the_subject_is_a_failed_email(send_email, sandbox):
    resp = await post_structured(send_email, event_dict(
        email_request(params={**PARAMS, "dossier_id": "H29\r\nBcc: attacker@example.com"}), EMAIL))
    assert resp.status_code == 200 and resp.headers["ce-type"] == "vn.gov.dvc.email.failed"
    assert resp.json()["reason"] == "template_error"
    assert sandbox["smtp"].requests == []


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+07:00", "9999-12-31T23:59:59-07:00"])
async def test_defect_05_out_of_range_time_is_400_not_500(send_email, sandbox, when):
    resp = await post_structured(send_email, event_dict(email_request(), EMAIL, time=when))
    assert resp.status_code == 400 and "time" in resp.text
    assert sandbox["smtp"].requests == []


def test_defect_05_mime_date_never_overflows():
    from shared.integrations.email import mime

    assert mime.event_time("0001-01-01T00:00:00+07:00") is None
    assert mime.event_time("2026-11-27T09:00:00+07:00") == datetime(2026, 11, 27, 2, tzinfo=UTC)


# -- 6. suppression bypass: one canonical address before suppression and sending -----------------------------
@pytest.mark.parametrize("address", ["bounced@example.vn,", "(c)bounced@example.vn", '"x"bounced@example.vn',
                                     "bounced@example.vn (c)", "Bounced <bounced@example.vn>",
                                     "bounced@example.vn\r\n"])
async def test_defect_06_unparsable_addresses_are_refused(send_email, sandbox, address):
    from shared.integrations.email.suppression import Suppressions
    from shared.storage.redis import Keys, get_redis

    await Suppressions(get_redis(), Keys(TEST_ENV)).add("bounced@example.vn", "bounced", "test")
    resp = await post_structured(send_email, event_dict(email_request(to=[address]), EMAIL))
    assert resp.status_code in (200, 400)
    if resp.status_code == 200:
        assert resp.json()["reason"] == "invalid_recipient"
    assert sandbox["smtp"].requests == []


async def test_defect_06_canonical_form_is_what_is_suppressed_and_sent(send_email, sandbox):
    from shared.integrations.email.addresses import InvalidAddress, canonical
    from shared.integrations.email.suppression import Suppressions
    from shared.storage.redis import Keys, get_redis

    assert canonical("Citizen@Example.VN") == "Citizen@example.vn"
    with pytest.raises(InvalidAddress):
        canonical("a..b@example.vn")
    await Suppressions(get_redis(), Keys(TEST_ENV)).add("bounced@example.vn", "bounced", "test")
    resp = await post_structured(send_email, event_dict(email_request(to=["bounced@EXAMPLE.vn"]), EMAIL))
    assert resp.json()["reason"] == "suppressed"
    assert sandbox["smtp"].requests == []


# -- 7. control characters in SMS text: refused before any provider ------------------------------------------
@pytest.mark.parametrize("text", ["Ho so\x00 da xong", "Ho so \x01", "\x1b[31mHo so", "Ho so\x7f"])
async def test_defect_07_control_characters_never_reach_a_provider(send_sms, sandbox, redis, text):
    from shared.storage.redis import Keys

    resp = await post_structured(send_sms, event_dict(sms(text=text)))
    assert resp.status_code == 200 and resp.json()["reason"] == "content_rejected"
    assert provider_requests(sandbox) == 0
    assert await redis.exists(Keys(TEST_ENV).key("sms", "breaker", "viettel")) == 0


# -- 8 / 16. receipts: `parts` bounded; signed but malformed payloads are 400 --------------------------------
def signed(body: bytes) -> dict[str, str]:
    from shared.security.webhooks import WebhookAuth, signed_headers

    return {**signed_headers(WebhookAuth("sandbox-dlr-secret"), body), "content-type": "application/json"}


async def correlate(redis, provider: str, message_id: str) -> None:
    from shared.integrations.sms.receipts import correlation_fields, correlation_key
    from shared.storage.redis import Keys

    key = correlation_key(Keys(TEST_ENV), provider, message_id)
    await redis.hset(key, mapping=correlation_fields("84903000010", 1, "mobifone", "/dvc/core/test", "e-1", None))
    await redis.pexpire(key, 60_000)


@pytest.mark.parametrize("part", [{"parts": 1_000_000}, {"part": 1_000_000}, {"part": 0}, {"parts": -5}])
async def test_defect_08_receipt_parts_are_bounded(send_sms, redis, part):
    await correlate(redis, "mobifone", "m-parts")
    body = orjson.dumps({"message_id": "m-parts", "status": "delivered", **part})
    resp = await send_sms.post("/dlr/mobifone", headers=signed(body), content=body)
    assert resp.status_code == 400, resp.text


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"3", b"null", b'{"message_id": null, "status": "delivered"}',
                                  b'{"message_id": "m", "part": "x"}', b'{"message_id": {"a": 1}}'])
async def test_defect_16_signed_malformed_receipts_are_400(send_sms, redis, body):
    resp = await send_sms.post("/dlr/mobifone", headers=signed(body), content=body)
    assert resp.status_code == 400, resp.text
    resp = await send_sms.post("/dlr/vnpt", headers=signed(body), content=body)
    assert resp.status_code == 400, resp.text


# -- 9. a receipt whose emit failed is emitted on the provider's retry -----------------------------------------
async def test_defect_09_receipt_marked_emitted_only_after_the_emit(redis):
    from shared.integrations.sms.jobs import SmsJobs
    from shared.integrations.sms.receipts import Receipt
    from shared.runtime import FunctionApp
    from shared.runtime.errors import DvciError
    from shared.runtime.settings import RuntimeSettings
    from tests.conftest import free_port

    await correlate(redis, "mobifone", "m-sink")
    down = SmsJobs(FunctionApp("send-sms", settings=RuntimeSettings(env=TEST_ENV,
                                                                    K_SINK=f"http://127.0.0.1:{free_port()}/")))
    with pytest.raises(DvciError):
        await down.receipt(Receipt("mobifone", "m-sink", "delivered"))
    async with Receiver() as sink:
        up = SmsJobs(FunctionApp("send-sms", settings=RuntimeSettings(env=TEST_ENV, K_SINK=sink.url)))
        assert await up.receipt(Receipt("mobifone", "m-sink", "delivered")) == "emit"
        assert await up.receipt(Receipt("mobifone", "m-sink", "delivered")) == "duplicate"
        assert [e["data"]["status"] for e in sink.json()] == ["delivered"]


# -- 10. SNS: topic allow-list required in production; freshness --------------------------------------------
@pytest.fixture(scope="module")
def sns_signer():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))

    def sign(message: dict) -> dict:
        from shared.integrations.email.sns import canonical

        message["Signature"] = base64.b64encode(key.sign(canonical(message), padding.PKCS1v15(),
                                                         hashes.SHA256())).decode()
        return message

    return sign, cert.public_bytes(serialization.Encoding.PEM)


CERT_URL = "https://sns.ap-southeast-1.amazonaws.com/SimpleNotificationService-test.pem"
TOPIC = "arn:aws:sns:ap-southeast-1:111122223333:dvci-ses"


def sns_time(age_s: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=age_s)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bounce_message(address: str = "citizen@example.vn", *, topic: str = TOPIC, age_s: float = 0,
                   body: object = None) -> dict:
    inner = body if body is not None else {
        "notificationType": "Bounce", "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                                                 "bouncedRecipients": [{"emailAddress": address}]},
        "mail": {"messageId": "ses-1", "headers": [{"name": "Message-ID", "value": "<m1@x>"}]}}
    return {"Type": "Notification", "MessageId": f"sns-{time.time_ns()}", "TopicArn": topic,
            "Message": inner if isinstance(inner, str) else json.dumps(inner), "Timestamp": sns_time(age_s),
            "SignatureVersion": "2", "SigningCertURL": CERT_URL}


async def deliver(message: dict, pem: bytes, *, env: str = TEST_ENV, topics: list[str] | None = None,
                  sink_url: str = "http://127.0.0.1:9/", confirmed: list | None = None):
    from starlette.requests import Request

    from shared.integrations.email.notifications import SesNotifications
    from shared.integrations.email.suppression import Suppressions
    from shared.runtime import FunctionApp
    from shared.runtime.settings import RuntimeSettings
    from shared.storage.redis import Keys, get_redis

    async def load(url: str) -> bytes:
        return pem

    async def confirm(url: str) -> None:
        (confirmed if confirmed is not None else []).append(url)

    app = FunctionApp("send-email", settings=RuntimeSettings(env=env, K_SINK=sink_url))
    handler = SesNotifications(app, Suppressions(get_redis(), Keys(TEST_ENV)), topics or [], load, confirm)
    body = json.dumps(message).encode()

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request({"type": "http", "method": "POST", "path": "/ses/notifications", "headers": [],
                       "query_string": b""}, receive)
    return await handler.handle(request)


@pytest.mark.parametrize("env", ["production", "staging"])
async def test_defect_10_production_requires_a_topic_allow_list(redis, sns_signer, env):
    from shared.integrations.email.suppression import Suppressions
    from shared.storage.redis import Keys

    sign, pem = sns_signer
    async with Receiver() as sink:
        resp = await deliver(sign(bounce_message()), pem, env=env, sink_url=sink.url)
        assert resp.status_code == 403
        confirmed: list[str] = []
        sub = sign({"Type": "SubscriptionConfirmation", "MessageId": "s1", "Token": "t", "TopicArn": TOPIC,
                    "Message": "confirm", "Timestamp": sns_time(),
                    "SubscribeURL": "https://sns.ap-southeast-1.amazonaws.com/?Action=ConfirmSubscription&Token=t",
                    "SignatureVersion": "2", "SigningCertURL": CERT_URL})
        assert (await deliver(sub, pem, env=env, confirmed=confirmed)).status_code == 403
        assert confirmed == [] and sink.got == []
        other = await deliver(sign(bounce_message(topic="arn:aws:sns:ap-southeast-1:999:x")), pem, env=env,
                              topics=[TOPIC], sink_url=sink.url)
        assert other.status_code == 403
        ok = await deliver(sign(bounce_message()), pem, env=env, topics=[TOPIC], sink_url=sink.url)
        assert ok.status_code == 200 and len(sink.got) == 1
    assert await Suppressions(redis, Keys(TEST_ENV)).which(["citizen@example.vn"]) == ["citizen@example.vn"]


@pytest.mark.parametrize("age_s", [2 * 3600, -2 * 3600])
async def test_defect_10_stale_or_future_sns_timestamp_is_refused(redis, sns_signer, age_s):
    from shared.integrations.email.suppression import Suppressions
    from shared.storage.redis import Keys

    sign, pem = sns_signer
    async with Receiver() as sink:
        resp = await deliver(sign(bounce_message(age_s=age_s)), pem, sink_url=sink.url)
        assert resp.status_code == 401 and b"Timestamp" in resp.body
        assert sink.got == []
    assert await Suppressions(redis, Keys(TEST_ENV)).which(["citizen@example.vn"]) == []


# -- 11. S3: timeouts inside the request deadline ----------------------------------------------------------
@pytest.fixture
def blackhole():
    """A TCP endpoint that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


async def test_defect_11_s3_fetch_times_out_within_the_deadline(blackhole, monkeypatch):
    from shared.storage.objects import ObjectStore

    monkeypatch.setenv("DVCI_S3_CONNECT_TIMEOUT_S", "1")
    monkeypatch.setenv("DVCI_S3_READ_TIMEOUT_S", "1")
    monkeypatch.setenv("DVCI_S3_MAX_ATTEMPTS", "2")
    store = ObjectStore("dvci-attachments", blackhole)
    try:  # the bound here is the test's patience, far above the configured 2 x 1 s
        await asyncio.wait_for(store.get("a.pdf", 1024), 25)
    except TimeoutError:
        pytest.fail("the S3 fetch was still waiting for the endpoint after 25 s")
    except Exception as exc:  # the class is asserted by name below
        assert type(exc).__name__ == "ObjectStoreUnavailable" and isinstance(exc, OSError), repr(exc)
    else:
        pytest.fail("a silent endpoint returned an object")


def test_defect_11_s3_client_is_configured_with_timeouts_and_bounded_retries():
    from shared.storage.objects import ObjectStore

    config = ObjectStore("b", "http://127.0.0.1:1")._s3().meta.config
    assert config.connect_timeout <= 5 and config.read_timeout <= 10
    assert config.retries["total_max_attempts"] <= 3


# -- 13. dvci dlq replay: OS user + reason, no replay of a replayed letter, --force gives a new id ---------------
async def test_defect_13_dlq_replay_identity_and_no_double_replay(dead_letter, redis, monkeypatch, capsys):
    import getpass

    from dvci import cli
    from shared.reliability.deadletters import DeadLetterStore
    from shared.reliability.keys import event_digest
    from shared.storage.redis import Keys, resolve_url

    parser = cli.build_parser()
    with pytest.raises(SystemExit):  # a reason is required
        parser.parse_args(["dlq", "replay", "abc"])
    h, b = binary(sdk_event(sms(), id_="dead-13", knativeerrorcode="503"))
    assert (await dead_letter.post("/", headers=h, content=b)).status_code == 202
    store = DeadLetterStore(redis, Keys(TEST_ENV))
    [letter] = await store.list()
    monkeypatch.setenv("REDIS_URL", resolve_url())
    async with Receiver() as broker:
        monkeypatch.setenv("DVCI_BROKER_URL", broker.url)
        with pytest.raises(SystemExit):  # no made-up operator names
            parser.parse_args(["dlq", "replay", letter.id, "--reason", "provider fixed", "--by", "anyone"])
        assert await cli._dlq(parser.parse_args(["dlq", "replay", letter.id, "--reason", "provider fixed"])) == 0
        replayed = await store.get(letter.id)  # the OS user (or the pod's ServiceAccount), never the typed name
        assert replayed.replays[0]["by"] != "anyone" and getpass.getuser() in replayed.replays[0]["by"]
        # replayed successfully once: the same letter again is refused (the completed record may have expired)
        with pytest.raises(SystemExit, match="already replayed"):
            await cli._dlq(parser.parse_args(["dlq", "replay", letter.id, "--reason", "again"]))
        assert await cli._dlq(parser.parse_args(["dlq", "replay", "--all", "--reason", "again"])) == 0
        assert [h["ce-id"] for h in broker.headers] == ["dead-13"]
        # --force: a new event, its id fixed by (letter id, replay number)
        assert await cli._dlq(parser.parse_args(["dlq", "replay", letter.id, "--reason", "resend",
                                                 "--force"])) == 0
        assert broker.headers[-1]["ce-id"] == event_digest(letter.id, "2")
    assert len((await store.get(letter.id)).replays) == 2


# -- 14. full-width and other non-ASCII digits -------------------------------------------------------------
@pytest.mark.parametrize("raw", ["0912３45678", "０９１２３４５６７８", "٠٩١٢٣٤٥٦٧٨", "0912345६78", "+８４912345678"])
def test_defect_14_only_ascii_digits_are_digits(raw):
    from shared.integrations.sms.numbers import InvalidNumber, normalise

    with pytest.raises(InvalidNumber):
        normalise(raw)


async def test_defect_14_full_width_number_is_not_sent(send_sms, sandbox):
    resp = await post_structured(send_sms, event_dict(sms(to="0912３45678")))
    assert resp.json()["reason"] == "invalid_recipient"
    assert provider_requests(sandbox) == 0


# -- 15. SNS certificates: bounded cache keyed by host+path, failures refused, no port/userinfo ---------------
@pytest.mark.parametrize("url", ["https://sns.us-east-1.amazonaws.com:8443/c.pem",
                                 "https://user:pw@sns.us-east-1.amazonaws.com/c.pem",
                                 "https://user@sns.us-east-1.amazonaws.com/c.pem",
                                 "http://sns.us-east-1.amazonaws.com/c.pem",
                                 "https://sns.us-east-1.amazonaws.com.evil.com/c.pem"])
def test_defect_15_port_and_userinfo_are_refused(url):
    from shared.integrations.email import sns

    assert not sns.sns_url(url)
    assert sns.sns_url("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem")


async def test_defect_15_certificate_cache_is_bounded_and_keyed_by_host_and_path(monkeypatch):
    from shared.integrations.email import sns

    fetched: list[str] = []

    async def download(url: str) -> bytes:
        fetched.append(url)
        if "broken" in url:
            raise OSError("connection refused")
        return b"PEM"

    monkeypatch.setattr(sns, "_download", download)
    monkeypatch.setattr(sns, "_cache", type(sns._cache)())
    base = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a.pem"
    for n in range(30):
        assert await sns.fetch_cert(f"{base}?n={n}") == b"PEM"
    assert len(fetched) == 1
    for n in range(200):
        await sns.fetch_cert(f"https://sns.us-east-1.amazonaws.com/c{n}.pem")
    assert len(sns._cache) <= sns.CACHE_MAX
    broken = "https://sns.us-east-1.amazonaws.com/broken.pem"
    with pytest.raises(sns.CertificateUnavailable):
        await sns.fetch_cert(broken)
    with pytest.raises(sns.CertificateUnavailable):
        await sns.fetch_cert(broken)
    assert fetched.count(broken) == 1  # a failure is remembered for a while, not re-fetched per request


async def test_defect_15_certificate_failure_is_401_not_500(redis, sns_signer):
    sign, _ = sns_signer
    from shared.integrations.email import sns
    from shared.integrations.email.notifications import SesNotifications
    from shared.integrations.email.suppression import Suppressions
    from shared.runtime import FunctionApp
    from shared.storage.redis import Keys, get_redis

    async def failing(url: str) -> bytes:
        raise sns.CertificateUnavailable("unreachable")

    message = sign(bounce_message())
    handler = SesNotifications(FunctionApp("send-email"), Suppressions(get_redis(), Keys(TEST_ENV)), [], failing)
    refused = await sns.verify(message, handler.load_cert)
    assert refused is not None and "certificate" in refused


# -- 16. signed but malformed SNS payloads are 400 --------------------------------------------------------------
@pytest.mark.parametrize("body", ["not json", "[]", '"x"', {"notificationType": "Bounce",
                                                           "bounce": {"bounceType": "Permanent",
                                                                      "bouncedRecipients": [{}]}},
                                  {"notificationType": "Bounce", "bounce": []},
                                  {"notificationType": "Complaint", "complaint": {"complainedRecipients": ["x"]}},
                                  {"notificationType": "Delivery", "delivery": {"recipients": [{"a": 1}]}}])
async def test_defect_16_signed_malformed_sns_payloads_are_400(redis, sns_signer, body):
    sign, pem = sns_signer
    async with Receiver() as sink:
        resp = await deliver(sign(bounce_message(body=body)), pem, sink_url=sink.url)
        assert resp.status_code == 400, resp.body
        assert sink.got == []


# -- 17. idempotency keys: no collision between a single event and a bulk child ----------------------------------
async def test_defect_17_single_event_does_not_collide_with_a_bulk_child(send_sms, sandbox):
    single_to, bulk_to = random_number(), random_number()
    h, b = binary(sdk_event(sms(to=single_to), id_="X17#0"))
    first = await send_sms.post("/", headers=h, content=b)
    assert first.status_code == 200 and first.json()["provider"]
    h, b = binary(sdk_event({"recipients": [{"to": bulk_to}], "text": "Ho so cua ban da duoc tiep nhan."},
                            "vn.gov.dvc.sms.bulk.requested", id_="X17"))
    bulk = await send_sms.post("/", headers=h, content=b)
    assert bulk.status_code == 200
    [result] = bulk.json()["results"]
    assert result["status"] == "accepted" and result["to"] == "84" + bulk_to[1:]
    assert sum(sum(sim.by_reference.values()) for sim in sandbox.values()) == 2


def test_defect_17_key_parts_are_unambiguous():
    from shared.reliability.keys import event_digest

    assert event_digest("/a\0b", "c") != event_digest("/a", "b\0c")


# -- 18. binary mode: invalid extension names and duplicate ce- headers ----------------------------------------
async def test_defect_18_binary_mode_refuses_invalid_names_and_duplicates(send_sms, sandbox):
    h, b = binary(sdk_event(sms()))
    resp = await send_sms.post("/", headers={**h, "ce-Ext_Name": "x"}, content=b)
    assert resp.status_code == 400 and "ext_name" in resp.text
    for name in ("ce-id", "ce-type", "ce-dossierid"):
        headers = [*h.items(), (name, "other")] if name in h else [*h.items(), (name, "a"), (name, "b")]
        resp = await send_sms.post("/", headers=headers, content=b)
        assert resp.status_code == 400 and name in resp.text
    assert provider_requests(sandbox) == 0


# -- 19. body-size limits, per route, before reading and parsing ------------------------------------------------
async def test_defect_19_bodies_over_the_limit_are_413(send_sms, sandbox, dead_letter, redis):
    big = b'{"to": "0912345678", "text": "x", "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'  # 10 MB
    h, _ = binary(sdk_event(sms()))
    assert (await send_sms.post("/", headers=h, content=big)).status_code == 413
    assert (await dead_letter.post("/", headers=h, content=big)).status_code == 413
    assert (await send_sms.post("/dlr/mobifone", content=big)).status_code == 413
    assert provider_requests(sandbox) == 0


async def test_defect_19_route_limit_from_settings(redis, monkeypatch):
    from tests.conftest import asgi_client

    monkeypatch.setenv("DVCI_LIMIT_ROUTE_BODY_OVERRIDES", '{"/ses/notifications": 1000}')
    async with asgi_client("send_email") as send_email:
        resp = await send_email.post("/ses/notifications", content=b"{" + b" " * 2000 + b"}")
        assert resp.status_code == 413
        resp = await send_email.post("/ses/notifications", content=b"{" + b" " * 500 + b"}")
        assert resp.status_code == 401  # under the limit: read, and refused as unsigned


# -- 20. numbers written with separators are masked ----------------------------------------------------------------
@pytest.mark.parametrize("written", ["0912 345 678", "0912.345.678", "0912-345-678", "+84 912 345 678",
                                     "(091) 234-5678", "84-912-345-678"])
def test_defect_20_numbers_with_separators_are_masked(written):
    from shared.observability.logs import JsonFormatter

    record = logging.LogRecord("dvci.runtime", logging.INFO, __file__, 1, "event handled", None, None)
    record.ce_id = f"sms-{written}"
    record.ce_source = f"/dvc/core/{written}"
    line = JsonFormatter().format(record)
    digits = "".join(c for c in line if c.isdigit())
    national = "".join(c for c in written if c.isdigit()).removeprefix("84").removeprefix("0")
    assert national not in digits, line


# -- 21. unvalidated content ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["", "multipart/mixed", "message/rfc822", "text/html; x", "nonsense"])
async def test_defect_21_attachment_content_type_allow_list(send_email, sandbox, content_type):
    data = email_request(attachments=[{"s3_key": "a.pdf", "filename": "a.pdf", "content_type": content_type}])
    resp = await post_structured(send_email, event_dict(data, EMAIL))
    assert resp.status_code == 400
    assert sandbox["smtp"].requests == []


@pytest.mark.parametrize("url", ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "//evil.example"])
async def test_defect_21_payment_url_must_be_http(send_email, sandbox, url):
    params = {"citizen_name": "A", "dossier_id": "H29-1", "amount_vnd": "10000", "due_date": "01/12/2026",
              "payment_url": url}
    resp = await post_structured(send_email, event_dict(email_request(template="payment_requested",
                                                                      params=params), EMAIL))
    assert resp.json()["reason"] == "template_error"
    assert sandbox["smtp"].requests == []


async def test_defect_21_dict_params_are_refused(send_email, send_sms, sandbox):
    resp = await post_structured(send_email, event_dict(email_request(
        params={**PARAMS, "citizen_name": {"first": "An"}}), EMAIL))
    assert resp.json()["reason"] == "template_error"
    resp = await post_structured(send_sms, event_dict(sms(text=None, template_id="dossier_received",
                                                          brandname="DVCCSKH",
                                                          params={"dossier_id": {"a": 1}, "note": "x"})))
    assert resp.json()["reason"] == "content_rejected"
    assert provider_requests(sandbox) == 0


@pytest.mark.parametrize("text", ["\n ", "   ", "\t\r\n"])
async def test_defect_21_blank_sms_text_is_not_sent(send_sms, sandbox, text):
    resp = await post_structured(send_sms, event_dict(sms(text=text)))
    assert resp.status_code in (200, 400)
    if resp.status_code == 200:
        assert resp.json()["reason"] == "content_rejected"
    assert provider_requests(sandbox) == 0


@pytest.mark.parametrize("when", ["not-a-time", "2026-13-01T00:00:00Z", "27/11/2026"])
async def test_defect_21_invalid_time_is_400(send_sms, sandbox, when):
    resp = await post_structured(send_sms, event_dict(sms(), time=when))
    assert resp.status_code == 400 and "time" in resp.text
    assert provider_requests(sandbox) == 0


# -- 22. a missing receipt secret refuses to start outside dev/test ----------------------------------------------
def test_defect_22_missing_receipt_secret_refuses_to_start(monkeypatch):
    from shared.integrations.sms.jobs import SmsJobs
    from shared.integrations.sms.mobifone import MobifoneSettings
    from shared.integrations.sms.vnpt import VnptSettings
    from shared.runtime import FunctionApp
    from shared.runtime.settings import RuntimeSettings

    assert MobifoneSettings.model_fields["dlr_secret"].default is None
    assert VnptSettings.model_fields["dlr_secret"].default is None
    for name in ("DVCI_SMS_MOBIFONE_DLR_SECRET", "DVCI_SMS_VNPT_DLR_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="DLR_SECRET"):
        SmsJobs(FunctionApp("send-sms", settings=RuntimeSettings(env="production")))
    monkeypatch.setenv("DVCI_SMS_MOBIFONE_DLR_SECRET", "a-real-secret")
    monkeypatch.setenv("DVCI_SMS_VNPT_DLR_SECRET", "another-real-secret")
    jobs = SmsJobs(FunctionApp("send-sms", settings=RuntimeSettings(env="production")))
    assert {auth.secret for _, auth, _ in jobs.webhooks.values()} >= {"a-real-secret", "another-real-secret"}
    monkeypatch.delenv("DVCI_SMS_MOBIFONE_DLR_SECRET")
    dev = SmsJobs(FunctionApp("send-sms", settings=RuntimeSettings(env=TEST_ENV)))
    assert dev.webhooks["/dlr/mobifone"][1].secret == "sandbox-dlr-secret"


async def test_defect_01_dead_letter_sink_keeps_what_the_functions_refuse(dead_letter, redis):
    """Refused for its bounds by a function (400, dead-lettered at once): the sink still keeps it."""
    from shared.reliability.deadletters import DeadLetterStore
    from shared.storage.redis import Keys

    resp = await post_structured(dead_letter, event_dict(sms(), id="y" * 5000, dossierid="H29\r\n",
                                                         time="not-a-time", knativeerrorcode="400"))
    assert resp.status_code == 202, resp.text
    [letter] = await DeadLetterStore(redis, Keys(TEST_ENV)).list()
    assert letter.event["id"] == "y" * 5000 and letter.event["dossierid"] == "H29\r\n"
