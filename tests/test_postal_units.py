"""Postal data without servers: UPU S10 numbers, administrative units and legacy conversion, status tables,
the label PDF (text and barcode read back)."""

from __future__ import annotations

import pytest

from shared.integrations.postal import STATUSES, Place, addresses, s10, statuses
from shared.integrations.postal.label import LabelData, render


@pytest.mark.parametrize("item", ["EB123456785VN", "RR473124829GB", "EE000000005VN", "CP123456785VN"])
def test_s10_valid(item):
    assert s10.is_valid(item, country=None), s10.problem(item, country=None)


@pytest.mark.parametrize(("item", "why"), [
    ("EB123456784VN", "check digit"), ("EB12345678VN", "not of the form"), ("E1123456785VN", "not of the form"),
    ("EB123456785US", "country"), ("", "not of the form"), ("eb123456785vn", "not of the form"),
])
def test_s10_invalid(item, why):
    assert not s10.is_valid(item) and why in (s10.problem(item) or "")


def test_s10_check_digit_rules():
    # C = 11 - sum mod 11; 10 -> 0 and 11 -> 5
    assert s10.check_digit("12345678") == 5
    serials = {s10.check_digit(f"{n:08d}") for n in range(0, 5000)}
    assert serials <= set(range(10)) and 0 in serials and 5 in serials
    for n in range(0, 3000, 7):
        assert s10.is_valid(s10.make("EB", n))


def test_units_in_force():
    t = addresses.tables()
    assert len(t.provinces) == 34 and len(t.wards) == 3321
    assert t.provinces["01"] == "Thành phố Hà Nội" and t.provinces["79"] == "Thành phố Hồ Chí Minh"
    assert addresses.resolve("1", "97").ward_code == "00097"  # codes are zero-padded


@pytest.mark.parametrize(("old", "new_province", "new_ward"), [
    (("01", "001", "00001"), "01", "Phường Hồng Hà"),     # Phúc Xá, Ba Đình, Hà Nội
    (("79", "760", "26734"), "79", "Phường Tân Định"),    # Tân Định, Quận 1, TP HCM
    (("74", "718", "25747"), "79", None),                 # Bình Dương merged into TP HCM
])
def test_legacy_conversion(old, new_province, new_ward):
    t = addresses.tables()
    if old[2] not in t.old_wards:
        pytest.skip("sample ward not in this data version")
    unit = addresses.convert_legacy(*old)
    assert unit.province_code == new_province and unit.ward_code in t.wards
    assert t.wards[unit.ward_code][0] == new_province
    if new_ward:
        assert unit.ward_name == new_ward
    assert unit.legacy_district_name == t.old_districts[old[1]][1]


def test_every_legacy_ward_of_a_province_converts():
    t = addresses.tables()
    wards = [(p, d, w) for w, (p, d, _) in t.old_wards.items() if p == "01"]
    assert len(wards) > 500
    for p, d, w in wards:
        unit = addresses.convert_legacy(p, d, w)
        assert unit.province_code == "01" and unit.ward_code in t.wards


@pytest.mark.parametrize("carrier", ["vnpost", "viettelpost"])
def test_status_tables_are_data(carrier):
    table = statuses.table(carrier)
    assert {m.status for m in table.values()} <= set(STATUSES)
    assert any(m.status == "delivered" for m in table.values())
    assert statuses.normalise(carrier, "99999").status == "exception"
    if carrier == "vnpost":
        assert [table[str(c)].status for c in (1, 6, 10, 12, 14, 15)] == [
            "pre_transit", "picked_up", "in_transit", "out_for_delivery", "delivered", "delivery_failed"]
        assert set(map(int, table)) >= set(range(23))  # codes 0-22 all mapped
    else:
        assert table["501"].status == "delivered" and table["504"].status == "returned"


def test_label_is_deterministic_and_readable():
    from tests.test_postal_create import barcodes, pdf_text

    p = Place("Trần Thị Ngọc Ánh", "0987654321", "Thôn Đồng Tâm, xã Ỷ La", "01", "Thành phố Hà Nội", "00097",
              "Phường Hồng Hà")
    d = LabelData("vnpost", "VNPost", "EB123456785VN", "standard", "H29-0001", p, p, 0, 120, "Kết quả")
    pdf = render(d)
    assert pdf == render(d) and pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    assert "Trần Thị Ngọc Ánh" in text and "Thôn Đồng Tâm, xã Ỷ La" in text and "Bưu kiện thường" in text
    assert barcodes(pdf) == ["EB123456785VN"]
