"""Administrative units for addresses: the two-level units in force since 1 July 2025 (34 provinces,
3,321 communes/wards, GSO codes) and the conversion of pre-reform three-level addresses (63 provinces,
districts, wards) to them — both from the `vietnamadminunits` package (docs/postal.md says why that one),
never from a hand-typed table. Unknown or inconsistent codes raise `InvalidAddress` naming the field."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


class InvalidAddress(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


@dataclass(frozen=True, slots=True)
class Unit:
    province_code: str
    province_name: str
    ward_code: str
    ward_name: str
    legacy_district_name: str = ""


@dataclass(frozen=True, slots=True)
class _Tables:
    provinces: dict[str, str]  # code -> name (34)
    wards: dict[str, tuple[str, str]]  # ward code -> (province code, name) (3,321)
    old_provinces: dict[str, str]
    old_districts: dict[str, tuple[str, str]]  # district code -> (province code, name)
    old_wards: dict[str, tuple[str, str, str]]  # ward code -> (province code, district code, name)


_lock = threading.Lock()
_tables: _Tables | None = None


def tables() -> _Tables:
    """The unit lists, read once per process from the package's database."""
    global _tables
    if _tables is None:
        with _lock:
            if _tables is None:
                _tables = _load()
    return _tables


def warm() -> None:
    """Load the data now (at import of a function), not on the first request."""
    tables()


def _load() -> _Tables:
    from vietnamadminunits.database import get_data

    new: list[dict[str, Any]] = get_data(["provinceCode", "province", "wardCode", "ward"], "admin_units")
    old: list[dict[str, Any]] = get_data(["provinceCode", "province", "districtCode", "district", "wardCode",
                                          "ward"], "admin_units_legacy")
    provinces = {r["provinceCode"]: r["province"] for r in new}
    wards = {r["wardCode"]: (r["provinceCode"], r["ward"]) for r in new if r["wardCode"]}
    old_provinces = {r["provinceCode"]: r["province"] for r in old}
    old_districts = {r["districtCode"]: (r["provinceCode"], r["district"]) for r in old if r["districtCode"]}
    old_wards = {r["wardCode"]: (r["provinceCode"], r["districtCode"], r["ward"]) for r in old if r["wardCode"]}
    return _Tables(provinces, wards, old_provinces, old_districts, old_wards)


def _code(value: str, width: int, field: str) -> str:
    v = (value or "").strip()
    if not v.isdigit() or len(v) > width:
        raise InvalidAddress(field, f"{value!r} is not a {width}-digit GSO code")
    return v.zfill(width)


def resolve(province_code: str, ward_code: str, prefix: str = "recipient") -> Unit:
    """A current (two-level) address: the ward must exist and lie in the province."""
    t = tables()
    p = _code(province_code, 2, f"{prefix}.province_code")
    w = _code(ward_code, 5, f"{prefix}.ward_code")
    if p not in t.provinces:
        hint = " (a pre-reform province: send it as `legacy`)" if p in t.old_provinces else ""
        raise InvalidAddress(f"{prefix}.province_code", f"{p} is not one of the 34 provinces in force{hint}")
    ward = t.wards.get(w)
    if ward is None:
        raise InvalidAddress(f"{prefix}.ward_code", f"{w} is not a commune/ward code in force since 1 July 2025")
    if ward[0] != p:
        raise InvalidAddress(f"{prefix}.ward_code", f"{w} ({ward[1]}) is not in province {p} ({t.provinces[p]})")
    return Unit(p, t.provinces[p], w, ward[1])


def convert_legacy(province_code: str, district_code: str, ward_code: str, prefix: str = "recipient.legacy") -> Unit:
    """A pre-reform (province, district, ward) address converted to the units in force. A pre-reform
    ward split between several new ones goes to the package's default successor (no geocoding)."""
    t = tables()
    p = _code(province_code, 2, f"{prefix}.province_code")
    d = _code(district_code, 3, f"{prefix}.district_code")
    w = _code(ward_code, 5, f"{prefix}.ward_code")
    if p not in t.old_provinces:
        raise InvalidAddress(f"{prefix}.province_code", f"{p} is not a pre-reform province code")
    district = t.old_districts.get(d)
    if district is None:
        raise InvalidAddress(f"{prefix}.district_code", f"{d} is not a pre-reform district code")
    if district[0] != p:
        raise InvalidAddress(f"{prefix}.district_code", f"{d} ({district[1]}) is not in province {p}")
    ward = t.old_wards.get(w)
    if ward is None:
        raise InvalidAddress(f"{prefix}.ward_code", f"{w} is not a pre-reform commune/ward code")
    if ward[1] != d:
        raise InvalidAddress(f"{prefix}.ward_code", f"{w} ({ward[2]}) is not in district {d} ({district[1]})")
    return _convert(p, d, w)


@lru_cache(maxsize=4096)
def _convert(p: str, d: str, w: str) -> Unit:
    from vietnamadminunits import convert_address

    t = tables()
    text = f"{t.old_wards[w][2]}, {t.old_districts[d][1]}, {t.old_provinces[p]}"  # no street: no geocoding
    unit = convert_address(text)
    new_p, new_w = unit.province_code, unit.ward_code
    if not new_w or new_w not in t.wards or t.wards[new_w][0] != new_p:
        raise InvalidAddress("recipient.legacy.ward_code", f"{w} has no successor in the units in force")
    return Unit(new_p, t.provinces[new_p], new_w, t.wards[new_w][1], legacy_district_name=t.old_districts[d][1])
