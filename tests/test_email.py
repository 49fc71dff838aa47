"""send_email against a real SMTP server (aiosmtpd over TCP) and SES/S3 in moto's server mode."""

from __future__ import annotations

import base64
import email
import json
import time
from email.policy import default as default_policy

import boto3
import pytest

from sandbox.base import Faults
from shared.integrations.email import mime
from shared.integrations.email.templates import TemplateError, render
from tests.conftest import MOTO, TEST_ENV
from tests.helpers import Receiver, binary, sdk_event

REQ = "vn.gov.dvc.email.send.requested"
PARAMS = {"citizen_name": "Nguyễn Thị Hồng Đào", "dossier_id": "000.00.01.H29-261127-0001",
          "procedure": "Cấp giấy phép xây dựng", "received_at": "27/11/2026 09:15", "expected_at": "11/12/2026"}


def request(**kw):
    data = {"to": ["citizen@example.vn"], "template": "dossier_received", "locale": "vi", "params": PARAMS}
    data.update(kw)
    return data


async def post(client, data, **kw):
    h, b = binary(sdk_event(data, REQ, **kw))
    return await client.post("/", headers=h, content=b)


def ses_sent() -> list[bytes]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return [m.raw_data.encode() if isinstance(m.raw_data, str) else m.raw_data
            for m in ses_backends[DEFAULT_ACCOUNT_ID]["ap-southeast-1"].sent_messages]


async def test_mime_as_received_by_a_real_smtp_server(send_email, sandbox):
    s3 = boto3.client("s3", endpoint_url=MOTO)
    s3.put_object(Bucket="dvci-attachments", Key="dossiers/H29/receipt.pdf", Body=b"%PDF-1.7 test receipt")
    resp = await post(send_email, request(cc=["Trần Văn Bình <binh@example.vn>".split("<")[1].rstrip(">")],
                                          attachments=[{"s3_key": "dossiers/H29/receipt.pdf",
                                                        "filename": "Biên nhận hồ sơ.pdf",
                                                        "content_type": "application/pdf"}]),
                      id_="mail-1")
    assert resp.status_code == 200 and resp.headers["ce-type"] == "vn.gov.dvc.email.sent"
    body = resp.json()
    assert body["provider"] == "smtp" and body["to"] == ["citizen@example.vn"]
    [got] = sandbox["smtp"].messages.values()
    assert got["envelope"]["to"] == ["citizen@example.vn", "binh@example.vn"]
    assert got["envelope"]["from"] == "no-reply@dichvucong.example.vn"
    raw = got["raw"]
    assert "Subject: =?utf-8?" in raw  # RFC 2047 on the wire
    msg = email.message_from_string(raw, policy=default_policy)
    assert msg["Subject"] == "Hồ sơ 000.00.01.H29-261127-0001 đã được tiếp nhận"
    assert "Cổng Dịch vụ công" in str(msg["From"])
    assert msg["Message-ID"] == body["message_id"] == mime.message_id("/dvc/core/test", "mail-1",
                                                                       "dichvucong.example.vn")
    assert msg.get_content_type() == "multipart/mixed"
    alternative = next(p for p in msg.iter_parts() if p.get_content_type() == "multipart/alternative")
    text, html = list(alternative.iter_parts())
    assert text.get_content_type() == "text/plain" and "Nguyễn Thị Hồng Đào" in text.get_content()
    assert html.get_content_type() == "text/html" and "<strong>Nguyễn Thị Hồng Đào</strong>" in html.get_content()
    [attachment] = [p for p in msg.iter_attachments()]
    assert attachment.get_filename() == "Biên nhận hồ sơ.pdf"
    assert attachment.get_content() == b"%PDF-1.7 test receipt"


async def test_html_is_escaped(send_email, sandbox):
    params = {**PARAMS, "citizen_name": "<script>alert(1)</script>"}
    await post(send_email, request(params=params))
    [got] = sandbox["smtp"].messages.values()
    msg = email.message_from_string(got["raw"], policy=default_policy)
    html = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


async def test_redelivery_is_the_same_message_once(send_email, sandbox):
    first = await post(send_email, request(), id_="mail-2")
    again = await post(send_email, request(), id_="mail-2")
    assert first.content == again.content
    assert list(sandbox["smtp"].by_reference.values()) == [1]
    date = mime.event_time("2026-11-27T02:15:00Z")
    one = mime.to_bytes(mime.build(sender="a@b.vn", to=["c@d.vn"], cc=[], subject="Hồ sơ", text="x", html="<p>x</p>",
                                   attachments=[], msg_id="<1@b.vn>", date=date))
    two = mime.to_bytes(mime.build(sender="a@b.vn", to=["c@d.vn"], cc=[], subject="Hồ sơ", text="x", html="<p>x</p>",
                                   attachments=[], msg_id="<1@b.vn>", date=date))
    assert one == two


async def test_temporary_smtp_failure_fails_over_to_ses_with_the_same_mime(send_email, sandbox):
    sandbox["smtp"].faults = Faults(error_rate=1.0, status=451)
    before = len(ses_sent())
    resp = await post(send_email, request(), id_="mail-3")
    assert resp.status_code == 200 and resp.json()["provider"] == "ses"
    sent = ses_sent()[before:]
    assert len(sent) == 1
    msg = email.message_from_bytes(sent[0], policy=default_policy)
    assert msg["Message-ID"] == resp.json()["message_id"]
    assert msg["Subject"] == "Hồ sơ 000.00.01.H29-261127-0001 đã được tiếp nhận"
    assert sandbox["smtp"].messages == {}


async def test_permanent_550_is_invalid_recipient_without_failover(send_email, sandbox):
    sandbox["smtp"].faults = Faults(error_rate=1.0, status=550)
    before = len(ses_sent())
    resp = await post(send_email, request())
    assert resp.headers["ce-type"] == "vn.gov.dvc.email.failed"
    assert resp.json()["reason"] == "invalid_recipient"
    assert len(ses_sent()) == before


@pytest.mark.parametrize(("data", "reason", "needle"), [
    (request(params={k: v for k, v in PARAMS.items() if k != "expected_at"}), "template_error", "expected_at"),
    (request(template="nope"), "template_error", "unknown template"),
    (request(to=["not-an-address"]), "invalid_recipient", "not e-mail"),
])
async def test_outcomes_before_any_provider(send_email, sandbox, data, reason, needle):
    resp = await post(send_email, data)
    assert resp.json()["reason"] == reason and needle in resp.json()["detail"]
    assert sandbox["smtp"].requests == []


def test_undefined_variables_are_errors_not_blanks():
    with pytest.raises(TemplateError, match="documents"):
        render("additional_documents", "en", {"citizen_name": "A", "dossier_id": "1", "deadline": "x"})


async def test_attachment_limits(send_email, sandbox):
    s3 = boto3.client("s3", endpoint_url=MOTO)
    s3.put_object(Bucket="dvci-attachments", Key="big.bin", Body=b"0" * (10 * 1024 * 1024 + 1))
    resp = await post(send_email, request(attachments=[{"s3_key": "big.bin", "filename": "big.bin"}]))
    assert resp.json()["reason"] == "attachment_too_large"
    resp = await post(send_email, request(attachments=[{"s3_key": "missing.pdf", "filename": "x.pdf"}]))
    assert resp.json()["reason"] == "attachment_missing"
    resp = await post(send_email, {**request(), "attachments": [{"url": "https://x/y.pdf", "filename": "y"}]})
    assert resp.status_code == 400  # object-storage keys only, never URLs
    assert sandbox["smtp"].requests == []


# -- SNS ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signer():
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)

    def sign(message: dict) -> dict:
        from shared.integrations.email.sns import canonical

        message["Signature"] = base64.b64encode(key.sign(canonical(message), padding.PKCS1v15(),
                                                         hashes.SHA256())).decode()
        return message

    return sign, pem


CERT_URL = "https://sns.ap-southeast-1.amazonaws.com/SimpleNotificationService-test.pem"


def sns_now() -> str:
    """SNS messages older than DVCI_EMAIL_SNS_MAX_AGE_S are refused: sign them now."""
    import datetime

    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bounce(address: str, kind: str = "Permanent") -> dict:
    body = {"notificationType": "Bounce", "bounce": {"bounceType": kind, "bounceSubType": "General",
                                                      "bouncedRecipients": [{"emailAddress": address}]},
            "mail": {"messageId": "ses-1", "headers": [{"name": "Message-ID", "value": "<m1@x>"}]}}
    return {"Type": "Notification", "MessageId": f"sns-{time.time_ns()}",
            "TopicArn": "arn:aws:sns:ap-southeast-1:1:ses", "Message": json.dumps(body),
            "Timestamp": sns_now(), "SignatureVersion": "2",
            "SigningCertURL": CERT_URL}


async def deliver_sns(message: dict, pem: bytes, sink_url: str, confirmed: list | None = None):
    from starlette.requests import Request

    from shared.integrations.email.notifications import SesNotifications
    from shared.integrations.email.suppression import Suppressions
    from shared.runtime import FunctionApp
    from shared.runtime.settings import RuntimeSettings
    from shared.storage.redis import Keys, get_redis

    async def load(url: str) -> bytes:
        assert url == CERT_URL
        return pem

    async def confirm(url: str) -> None:
        (confirmed if confirmed is not None else []).append(url)

    app = FunctionApp("send-email", settings=RuntimeSettings(K_SINK=sink_url))
    handler = SesNotifications(app, Suppressions(get_redis(), Keys(TEST_ENV)), [], load, confirm)
    body = json.dumps(message).encode()

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request({"type": "http", "method": "POST", "path": "/ses/notifications", "headers": [],
                       "query_string": b""}, receive)
    return await handler.handle(request)


async def test_sns_bounce_suppresses_and_emits(send_email, sandbox, signer, monkeypatch, capsys):
    sign, pem = signer
    async with Receiver() as sink:
        resp = await deliver_sns(sign(bounce("citizen@example.vn")), pem, sink.url)
        assert resp.status_code == 200
        [event] = sink.json()
    assert event["headers"]["ce-type"] == "vn.gov.dvc.email.delivery.updated"
    assert event["data"]["status"] == "bounced" and event["data"]["suppressed"] is True
    refused = await post(send_email, request())
    assert refused.json()["reason"] == "suppressed" and sandbox["smtp"].requests == []
    from dvci import cli
    from shared.storage.redis import resolve_url

    monkeypatch.setenv("REDIS_URL", resolve_url())
    assert await cli._email(cli.build_parser().parse_args(["email", "unsuppress", "citizen@example.vn",
                                                          "--reason", "bounce was a mistake"])) == 0
    assert (await post(send_email, request())).json()["provider"] == "smtp"


async def test_sns_soft_bounce_does_not_suppress(send_email, sandbox, signer):
    sign, pem = signer
    async with Receiver() as sink:
        assert (await deliver_sns(sign(bounce("citizen@example.vn", "Transient")), pem, sink.url)).status_code == 200
    assert (await post(send_email, request())).json()["provider"] == "smtp"


async def test_sns_signatures_tampered_wrong_host_and_confirmation(redis, signer):
    sign, pem = signer
    async with Receiver() as sink:
        tampered = sign(bounce("a@example.vn"))
        tampered["Message"] = tampered["Message"].replace("a@example.vn", "b@example.vn")
        assert (await deliver_sns(tampered, pem, sink.url)).status_code == 401
        wrong = bounce("a@example.vn")
        wrong["SigningCertURL"] = "https://attacker.example.com/sns.pem"
        assert (await deliver_sns(sign(wrong), pem, sink.url)).status_code == 401
        unsigned = bounce("a@example.vn")
        unsigned["Signature"] = base64.b64encode(b"x" * 256).decode()
        assert (await deliver_sns(unsigned, pem, sink.url)).status_code == 401
        confirmed: list[str] = []
        sub = sign({"Type": "SubscriptionConfirmation", "MessageId": "s1", "Token": "t",
                    "TopicArn": "arn:aws:sns:ap-southeast-1:1:ses", "Message": "confirm",
                    "SubscribeURL": "https://sns.ap-southeast-1.amazonaws.com/?Action=ConfirmSubscription&Token=t",
                    "Timestamp": sns_now(), "SignatureVersion": "2", "SigningCertURL": CERT_URL})
        assert (await deliver_sns(sub, pem, sink.url, confirmed)).status_code == 200
        assert confirmed == [sub["SubscribeURL"]]
        assert sink.got == []


def test_preview_renders_to_terminal_and_eml(tmp_path, capsys):
    from dvci import cli

    data = tmp_path / "params.json"
    data.write_text(json.dumps(PARAMS))
    assert cli.main(["email", "preview", "dossier_received", "--locale", "vi", "--data", f"@{data}"]) == 0
    out = capsys.readouterr().out
    assert "Hồ sơ 000.00.01.H29-261127-0001 đã được tiếp nhận" in out and "Nguyễn Thị Hồng Đào" in out
    eml = tmp_path / "preview.eml"
    assert cli.main(["email", "preview", "dossier_received", "--data", f"@{data}", "--out", str(eml)]) == 0
    msg = email.message_from_bytes(eml.read_bytes(), policy=default_policy)
    assert msg["Subject"].startswith("Hồ sơ")
    with pytest.raises(SystemExit, match="expected_at"):
        cli.main(["email", "preview", "dossier_received", "--data", '{"citizen_name": "A"}'])


def test_dkim_signature_verifies():
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    msg = mime.build(sender="no-reply@dichvucong.example.vn", to=["c@example.vn"], cc=[], subject="Hồ sơ",
                     text="Nội dung", html="<p>Nội dung</p>", attachments=[], msg_id="<1@dichvucong.example.vn>",
                     date=None)
    raw = mime.to_bytes(msg, ("dvc", "dichvucong.example.vn", pem))
    assert raw.startswith(b"DKIM-Signature:")
    txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"dvc._domainkey.dichvucong.example.vn."
        return txt

    assert dkim.verify(raw, dnsfunc=dns)
    tampered = raw.replace("<p>Nội dung</p>".encode(), "<p>Nội dunG</p>".encode())
    assert tampered != raw and not dkim.verify(tampered, dnsfunc=dns)
