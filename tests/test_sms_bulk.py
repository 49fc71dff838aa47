"""Bulk: Viettel recipients in wsCpMt4 calls, per-recipient idempotency, partial failures, redelivery."""

from __future__ import annotations

from sandbox.base import Faults
from tests.helpers import binary, sdk_event

BULK = "vn.gov.dvc.sms.bulk.requested"


async def post(client, data, id_=None):
    h, b = binary(sdk_event(data, BULK, id_=id_))
    return await client.post("/", headers=h, content=b)


def numbers(n: int, prefix: str = "098") -> list[dict]:
    return [{"to": f"{prefix}{7000000 + i:07d}"} for i in range(n)]


async def test_bulk_uses_wscpmt4_and_summarises(send_sms, sandbox):
    recipients = [*numbers(150), {"to": "0212345678"}, {"to": "0912000099"}]  # 150 ok, 1 invalid, 1 VinaPhone
    resp = await post(send_sms, {"recipients": recipients, "text": "Ho so da co ket qua"})
    assert resp.status_code == 200 and resp.headers["ce-type"] == "vn.gov.dvc.sms.bulk.completed"
    body = resp.json()
    assert body["total"] == 152 and body["accepted"] == 151 and body["failed"] == 1
    assert body["results"][150]["status"] == "failed" and body["results"][150]["reason"] == "invalid_recipient"
    assert [r["to"] for r in body["results"]][:2] == ["84987000000", "84987000001"]  # request order kept
    ops = [r["operation"] for r in sandbox["viettel"].requests if r.get("operation")]
    assert set(ops) == {"wsCpMt4"} and len(sandbox["viettel"].messages) == 151  # the test policy: Viettel first
    calls = [r["call"] for r in sandbox["viettel"].requests]
    assert len(calls) == 151 and len(set(calls)) == 2  # 100 + 51 recipients in two wsCpMt4 calls


async def test_bulk_redelivery_sends_nobody_twice(send_sms, sandbox):
    data = {"recipients": numbers(20, "097"), "text": "Ho so da co ket qua"}
    first = await post(send_sms, data, id_="bulk-1")
    again = await post(send_sms, data, id_="bulk-1")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and first.headers["ce-id"] == again.headers["ce-id"]
    assert len(sandbox["viettel"].messages) == 20 and sum(sandbox["viettel"].by_reference.values()) == 20


async def test_bulk_partial_failures_and_template_rejections(send_sms, sandbox):
    data = {"recipients": [*numbers(3, "096"), {"to": "0961234"}], "template_id": "result_ready",
            "params": {"note": "Moi nhan tai mot cua"}, "brandname": "DVCCSKH"}
    data["recipients"][0]["params"] = {"dossier_id": "H29-1"}
    data["recipients"][1]["params"] = {"dossier_id": "H29-2"}
    resp = await post(send_sms, data)  # recipient 3 lacks dossier_id, recipient 4 is no number
    body = resp.json()
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted", "failed", "failed"]
    assert body["results"][2]["reason"] == "content_rejected" and "dossier_id" in body["results"][2]["detail"]
    assert body["results"][3]["reason"] == "invalid_recipient"
    texts = {m["content"] for m in sandbox["viettel"].messages.values()}
    assert texts == {f"Ho so H29-{n} da co ket qua. Moi nhan tai mot cua" for n in (1, 2)}


async def test_bulk_fails_over_when_viettel_is_down_and_retries_ambiguous(send_sms, sandbox):
    sandbox["viettel"].faults = Faults(error_rate=1.0, status=503, count=1)
    resp = await post(send_sms, {"recipients": numbers(5, "086"), "text": "Ho so"})
    body = resp.json()
    assert body["accepted"] == 5 and {r["provider"] for r in body["results"]} == {"vnpt"}
    sandbox["viettel"].faults = Faults(malformed_rate=1.0, count=1)
    data = {"recipients": numbers(4, "033"), "text": "Ho so"}
    first = await post(send_sms, data, id_="bulk-amb")
    assert first.status_code == 503  # the batch may have gone out: the broker retries, same references
    second = await post(send_sms, data, id_="bulk-amb")
    assert second.status_code == 200 and second.json()["accepted"] == 4
    assert {r["provider"] for r in second.json()["results"]} == {"viettel"}
    assert len([m for m in sandbox["viettel"].messages.values() if m["to"].startswith("8433")]) == 4


async def test_bulk_is_bounded(send_sms):
    resp = await post(send_sms, {"recipients": numbers(1001), "text": "x"})
    assert resp.status_code == 400 and "data.recipients" in [e["field"] for e in resp.json()["errors"]]
