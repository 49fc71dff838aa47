"""postal_create over real HTTP: the carrier sandboxes (vnpost, viettelpost), real Redis, moto S3."""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from sandbox.base import Faults
from shared.integrations.postal import s10
from shared.integrations.postal.service import client_order_number
from tests.helpers import binary, sdk_event

REQUESTED = "vn.gov.dvc.postal.shipment.requested"
NAME = "Nguyễn Thị Ánh Tuyết"


def shipment(purpose: str = "result_delivery", dossier_id: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"dossier_id": dossier_id or f"H29.01-{uuid.uuid4().hex[:10]}", "purpose": purpose,
            "recipient": {"name": NAME, "phone": "0912345678", "address_line": "Số 12 ngõ 34 phố Hàng Bạc",
                          "province_code": "01", "ward_code": "00097"},
            "parcel": {"weight_g": 300, "contents": "Kết quả giải quyết hồ sơ"}, **kw}


async def post(client, data: dict[str, Any], type_: str = REQUESTED, id_: str | None = None):
    h, b = binary(sdk_event(data, type_, id_=id_))
    r = await client.post("/", headers=h, content=b)
    return r, (orjson.loads(r.content) if r.status_code == 200 else None)


def orders(sim) -> int:
    return len(sim.messages)


def creates(sim) -> int:
    return sum(1 for r in sim.requests if r.get("path") in ("CreateOrder", "createOrder"))


async def label_pdf(key: str) -> bytes:
    import boto3

    from tests.conftest import MOTO

    return boto3.client("s3", endpoint_url=MOTO).get_object(Bucket="dvci-postal-labels", Key=key)["Body"].read()


def pdf_text(pdf: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        done = subprocess.run(["pdftotext", "-enc", "UTF-8", f.name, "-"], capture_output=True, check=True)
        return done.stdout.decode()


def barcodes(pdf: bytes) -> list[str]:
    import zxingcpp
    from PIL import Image

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "l.pdf").write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", "200", "-png", "-singlefile", str(Path(d) / "l.pdf"), str(Path(d) / "l")],
                       check=True)
        return [b.text for b in zxingcpp.read_barcodes(Image.open(Path(d) / "l.png"))]


async def test_bcci_shipment_created_at_vnpost_with_label(postal_create, postal_sandbox):
    data = shipment(service="express", cod_vnd=35000)
    r, out = await post(postal_create, data)
    assert r.status_code == 200, r.text
    assert r.headers["ce-type"] == "vn.gov.dvc.postal.shipment.created"
    assert out["carrier"] == "vnpost" and out["service"] == "express" and out["cod_vnd"] == 35000
    assert s10.is_valid(out["tracking_number"]), out
    assert out["fee_vnd"] > 0 and out["carrier_order_id"]
    vnpost, vtp = postal_sandbox["vnpost"], postal_sandbox["viettelpost"]
    assert orders(vnpost) == 1 and orders(vtp) == 0 and not vtp.requests
    order = vnpost.messages[client_order_number(data["dossier_id"], "result_delivery")]
    assert order["tracking_number"] == out["tracking_number"] and order["cod"] == 35000
    pdf = await label_pdf(out["label_key"])
    text = pdf_text(pdf)
    assert NAME in text and data["dossier_id"] in text and "35.000 đ" in text and "Phường Hồng Hà" in text
    assert barcodes(pdf) == [out["tracking_number"]]


async def test_a_second_request_for_the_same_shipment_answers_the_existing_order(postal_create, postal_sandbox):
    data = shipment()
    r1, first = await post(postal_create, data)
    r2, second = await post(postal_create, data)  # another event id, same (dossier_id, purpose)
    r3, _ = await post(postal_create, {**data, "purpose": "dossier_pickup"})
    assert r1.status_code == r2.status_code == r3.status_code == 200
    assert second == first
    vnpost = postal_sandbox["vnpost"]
    assert creates(vnpost) == 2 and orders(vnpost) == 2  # one per purpose


async def test_legacy_address_is_converted_to_current_units(postal_create, postal_sandbox):
    data = shipment()
    data["recipient"] = {**data["recipient"], "province_code": None, "ward_code": None,
                         "legacy": {"province_code": "01", "district_code": "001", "ward_code": "00001"}}
    del data["recipient"]["province_code"], data["recipient"]["ward_code"]
    r, out = await post(postal_create, data)
    assert r.status_code == 200 and r.headers["ce-type"].endswith("shipment.created"), r.text
    text = pdf_text(await label_pdf(out["label_key"]))
    assert "Phường Hồng Hà" in text  # Phúc Xá, Ba Đình (pre-2025) is now part of Hồng Hà


@pytest.mark.parametrize(("recipient", "field"), [
    ({"province_code": "01", "ward_code": "99999"}, "recipient.ward_code"),
    ({"province_code": "79", "ward_code": "00097"}, "recipient.ward_code"),  # a Hà Nội ward under HCMC
    ({"province_code": "95", "ward_code": "00097"}, "recipient.province_code"),
    ({"legacy": {"province_code": "01", "district_code": "002", "ward_code": "00001"}}, "recipient.legacy.ward_code"),
    ({"legacy": {"province_code": "79", "district_code": "001", "ward_code": "00001"}},
     "recipient.legacy.district_code"),
])
async def test_invalid_address_fails_before_any_carrier_call(postal_create, postal_sandbox, recipient, field):
    data = shipment()
    base = {k: v for k, v in data["recipient"].items() if k not in ("province_code", "ward_code")}
    data["recipient"] = {**base, **recipient}
    r, out = await post(postal_create, data)
    assert r.status_code == 200 and r.headers["ce-type"] == "vn.gov.dvc.postal.shipment.failed"
    assert out["reason"] == "invalid_address" and out["detail"].startswith(field + ":"), out
    assert not postal_sandbox["vnpost"].requests and not postal_sandbox["viettelpost"].requests


async def test_invalid_phone(postal_create, postal_sandbox):
    data = shipment()
    data["recipient"]["phone"] = "0123"
    r, out = await post(postal_create, data)
    assert r.status_code == 200 and out["reason"] == "invalid_phone"
    assert not postal_sandbox["vnpost"].requests


async def test_other_takes_the_cheapest_carrier(postal_create, postal_sandbox):
    postal_sandbox["viettelpost"].prices["standard"] = 15000
    r, out = await post(postal_create, shipment("other"))
    assert r.status_code == 200 and out["carrier"] == "viettelpost" and out["fee_vnd"] == 15000
    assert orders(postal_sandbox["viettelpost"]) == 1 and orders(postal_sandbox["vnpost"]) == 0
    postal_sandbox["vnpost"].prices["standard"] = 9000
    r, out = await post(postal_create, shipment("other"))
    assert out["carrier"] == "vnpost"


async def test_other_fails_over_when_the_cheapest_is_unavailable(postal_create, postal_sandbox):
    vnpost, vtp = postal_sandbox["vnpost"], postal_sandbox["viettelpost"]
    vnpost.prices["standard"] = 9000
    r, _ = await post(postal_create, shipment("other", dossier_id="warm"))  # log in first (tokens cached)
    vnpost.faults = Faults(error_rate=1.0, status=503)
    r, out = await post(postal_create, shipment("other"))
    assert r.status_code == 200 and out["carrier"] == "viettelpost", r.text
    assert orders(vtp) == 1 and orders(vnpost) == 1  # only the warm-up


async def test_bcci_never_fails_over(postal_create, postal_sandbox):
    vnpost, vtp = postal_sandbox["vnpost"], postal_sandbox["viettelpost"]
    vnpost.faults = Faults(error_rate=1.0, status=503)
    data = shipment("result_delivery")
    r, _ = await post(postal_create, data)
    assert r.status_code == 503 and "retry-after" in r.headers
    assert not vtp.requests and orders(vnpost) == 0
    vnpost.faults = None
    r, out = await post(postal_create, data)  # the broker's retry
    assert r.status_code == 200 and out["carrier"] == "vnpost"


async def test_a_forced_carrier_must_be_allowed_for_the_purpose(postal_create, postal_sandbox):
    r, out = await post(postal_create, shipment("dossier_pickup", carrier="viettelpost"))
    assert r.status_code == 200 and out["reason"] == "no_carrier"
    assert not postal_sandbox["viettelpost"].requests


async def test_ambiguous_create_is_resolved_by_the_client_order_number(postal_create, postal_sandbox):
    vnpost = postal_sandbox["vnpost"]
    await post(postal_create, shipment(dossier_id="warm"))  # log in first
    vnpost.lose_answers = {"CreateOrder": 1}  # the create lands, its answer never comes
    data = shipment()
    r, out = await post(postal_create, data)
    assert r.status_code == 200 and out["carrier"] == "vnpost", r.text
    ref = client_order_number(data["dossier_id"], data["purpose"])
    assert vnpost.by_reference[ref] == 1 and orders(vnpost) == 2  # asked by number, not created again
    assert vnpost.messages[ref]["tracking_number"] == out["tracking_number"]


async def test_ambiguous_create_never_fails_over_even_for_other(postal_create, postal_sandbox):
    vnpost, vtp = postal_sandbox["vnpost"], postal_sandbox["viettelpost"]
    vnpost.prices["standard"] = 9000
    await post(postal_create, shipment("other", dossier_id="warm"))
    vtp.requests.clear()
    vnpost.lose_answers = {"CreateOrder": -1, "getOrder": -1}  # answers lost, the requests land
    data = shipment("other")
    h, b = binary(sdk_event(data, REQUESTED))
    r = await postal_create.post("/", headers=h, content=b)
    assert r.status_code == 503, r.text
    assert not [q for q in vtp.requests if q.get("path") == "createOrder"]
    vnpost.lose_answers = {}
    r = await postal_create.post("/", headers=h, content=b)  # the broker redelivers
    out = orjson.loads(r.content)
    assert r.status_code == 200 and out["carrier"] == "vnpost"
    ref = client_order_number(data["dossier_id"], "other")
    assert ref in vnpost.messages and orders(vtp) == 0
    assert ref not in vtp.messages


async def test_a_number_that_is_not_s10_is_never_accepted(postal_create, postal_sandbox):
    vnpost = postal_sandbox["vnpost"]
    vnpost.invalid_numbers = True
    r, _ = await post(postal_create, shipment())
    assert r.status_code == 503  # ambiguous: the same carrier is asked again, nothing is replied as created
    vnpost.invalid_numbers = False


async def test_quote_cheapest_first(postal_create, postal_sandbox):
    data = shipment()
    q = {"recipient": data["recipient"], "parcel": data["parcel"]}
    r, out = await post(postal_create, q, "vn.gov.dvc.postal.quote.requested")
    assert r.status_code == 200 and r.headers["ce-type"] == "vn.gov.dvc.postal.quoted"
    fees = [o["fee_vnd"] for o in out["options"]]
    assert fees == sorted(fees) and len(out["options"]) == 4
    assert {(o["carrier"], o["service"]) for o in out["options"]} == {
        ("vnpost", "standard"), ("vnpost", "express"), ("viettelpost", "standard"), ("viettelpost", "express")}


async def test_cancel(postal_create, postal_sandbox):
    vnpost = postal_sandbox["vnpost"]
    data = shipment()
    _, created = await post(postal_create, data)
    cancel = {"dossier_id": data["dossier_id"], "purpose": data["purpose"]}
    r, out = await post(postal_create, cancel, "vn.gov.dvc.postal.shipment.cancel.requested")
    assert r.headers["ce-type"] == "vn.gov.dvc.postal.shipment.cancelled"
    assert out["tracking_number"] == created["tracking_number"]
    assert vnpost.messages[client_order_number(data["dossier_id"], data["purpose"])]["cancelled"]
    # picked up already: not cancellable
    data2 = shipment()
    _, created2 = await post(postal_create, data2)
    await vnpost.report(created2["tracking_number"], "6", __import__("time").time())
    r, out = await post(postal_create, {"dossier_id": data2["dossier_id"], "purpose": data2["purpose"]},
                        "vn.gov.dvc.postal.shipment.cancel.requested")
    assert out["reason"] == "not_cancellable"
    r, out = await post(postal_create, {"dossier_id": "nope", "purpose": "other"},
                        "vn.gov.dvc.postal.shipment.cancel.requested")
    assert out["reason"] == "unknown_shipment"
