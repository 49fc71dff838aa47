"""send_sms against the Viettel simulator over real HTTP: the SOAP on the wire and every answer."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sandbox.base import Faults
from tests.helpers import binary, sdk_event, sms

SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"


async def post(client, data, **kw):
    headers, body = binary(sdk_event(data, **kw))
    return await client.post("/", headers=headers, content=body)


async def test_soap_request_on_the_wire(send_sms, sandbox):
    resp = await post(send_sms, sms(to="+84 98 765 4321", text="Ho so cua ban & giay to da duoc tiep nhan."))
    assert resp.status_code == 200, resp.text
    req = sandbox["viettel"].requests[-1]
    f = req["fields"]
    assert req["operation"] == "wsCpMt"
    assert f["ReceiverID"] == f["UserID"] == "84987654321"
    assert f["CommandCode"] == "bulksms" and f["ServiceID"] == "DVCTEST" and f["ContentType"] == "0"
    assert f["Content"] == "Ho so cua ban & giay to da duoc tiep nhan."  # XML-escaped on the wire
    assert len(f["RequestID"]) == 24
    assert resp.json()["provider_message_id"] == f["RequestID"]


async def test_envelope_is_valid_soap_with_unicode_content_type():
    from shared.integrations.sms import SmsMessage
    from shared.integrations.sms.viettel import ViettelSms

    body = ViettelSms().request_body(SmsMessage("84912345678", "Hồ sơ <đã> tiếp nhận", "ucs2", 1, "r1", "DVC", "otp"))
    root = ET.fromstring(body)
    call = root.find(f"{SOAP}Body")[0]
    assert call.tag == "{http://impl.bulkSms.ws/}wsCpMt"
    fields = {c.tag: c.text for c in call}
    assert fields["Content"] == "Hồ sơ <đã> tiếp nhận" and fields["ContentType"] == "1"


async def test_unicode_text_is_sent_as_content_type_1(send_sms, sandbox):
    resp = await post(send_sms, sms(text="Hồ sơ của bạn đã được tiếp nhận", unsigned=False))
    assert resp.json()["encoding"] == "ucs2"
    assert sandbox["viettel"].requests[-1]["fields"]["ContentType"] == "1"


async def test_text_matching_no_registered_template_fails_before_any_provider(send_sms, sandbox):
    resp = await post(send_sms, sms(text="Free text not matching a template", brandname="DVCCSKH"))
    assert resp.status_code == 200 and resp.headers["ce-type"] == "vn.gov.dvc.sms.failed"
    assert resp.json()["reason"] == "content_rejected"
    assert all(sim.requests == [] for sim in sandbox.values())


async def test_result_0_template_mismatch_is_failed_content_rejected(send_sms, sandbox):
    sandbox["viettel"].templates = {"DVCTEST": [r"Only this text"]}  # registered at Viettel, unknown to us
    try:
        resp = await post(send_sms, sms(text="Some other text"))
    finally:
        from sandbox.viettel import registered_templates

        sandbox["viettel"].templates = registered_templates()
    assert resp.status_code == 200
    assert resp.headers["ce-type"] == "vn.gov.dvc.sms.failed"
    body = resp.json()
    assert body["reason"] == "content_rejected" and "CONTENT_NOT_MATCH_TEMPLATE" in body["detail"]
    assert sandbox["viettel"].messages == {}
    assert sandbox["vnpt"].requests == []  # a refusal is an outcome, never failed over


async def test_matching_template_is_accepted(send_sms, sandbox):
    resp = await post(send_sms, sms(text="Ho so H29-1 da duoc tiep nhan. Cam on.", brandname="DVCCSKH"))
    assert resp.headers["ce-type"] == "vn.gov.dvc.sms.accepted"


async def test_malformed_soap_reply_is_retryable_and_not_failed_over(send_sms, sandbox):
    sandbox["viettel"].faults = Faults(malformed_rate=1.0)
    resp = await post(send_sms, sms())
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/problem+json"
    assert "retry-after" in resp.headers
    assert sandbox["vnpt"].requests == [] and sandbox["mobifone"].requests == []
    # the broker's redelivery goes to the same provider with the same reference, once it answers
    sandbox["viettel"].faults = None
    again = await post(send_sms, sms(), id_=None)
    assert again.status_code == 200


async def test_redelivery_after_ambiguous_reply_reuses_provider_and_reference(send_sms, sandbox):
    sandbox["viettel"].faults = Faults(malformed_rate=1.0)
    event = sdk_event(sms())
    h, b = binary(event)
    assert (await send_sms.post("/", headers=h, content=b)).status_code == 503
    sandbox["viettel"].faults = None
    resp = await send_sms.post("/", headers=h, content=b)
    assert resp.status_code == 200 and resp.json()["provider"] == "viettel"
    refs = set(sandbox["viettel"].by_reference)
    assert len(refs) == 1 and len(sandbox["viettel"].messages) == 1
    assert sandbox["vnpt"].requests == []


async def test_soap_fault_for_a_malformed_request():
    import aiohttp

    from tests.conftest import SANDBOX

    async with aiohttp.ClientSession() as s, s.post(f"{SANDBOX}/viettel/bulkapi", data=b"<nope") as r:
        assert r.status == 500
        assert b"<faultstring>" in await r.read()


async def test_wrong_credentials_fail_over(send_sms, sandbox):
    sandbox["viettel"].password = "other"
    try:
        resp = await post(send_sms, sms())
    finally:
        sandbox["viettel"].password = "sandbox"
    assert resp.status_code == 200 and resp.json()["provider"] == "vnpt"
