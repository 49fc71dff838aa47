"""Citizen lookup through LGSP: CCCD checks before any call, live answers cached encrypted, the cache only
when the live source is down, an audit record for every lookup. Real HTTP sandbox, real Redis."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from sandbox.base import Faults
from shared.integrations.lgsp.citizens import CitizenIdError, check_cccd
from tests.conftest import TEST_ENV
from tests.test_lgsp_sync import post

LOOKUP = "vn.gov.dvc.citizen.lookup.requested"


def ask(citizen_id: str, **kw: Any) -> dict[str, Any]:
    return {"citizen_id": citizen_id, "purpose": "Xác minh nhân thân khi tiếp nhận hồ sơ",
            "requested_by": "canbo.motcua@h22", **kw}


def citizen(sim, i: int = 0) -> dict[str, str]:
    return list(sim.population.values())[i]


def iso(born: str) -> str:
    return f"{born[:4]}-{born[4:6]}-{born[6:]}"


@pytest.mark.parametrize(("cid", "birth", "reason"), [
    ("12345", None, "invalid_id"),                 # not 12 digits
    ("00109001234X", None, "invalid_id"),
    ("003090012345", None, "invalid_id"),          # 003 is no province code
    ("001399012345", None, "invalid_id"),          # born 2099: in the future
    ("001090012345", "1991-02-03", "mismatch"),    # the card says 1990
    ("001200012345", "1990-02-03", "mismatch"),    # century digit 2: born 2000
])
def test_cccd_checks(cid, birth, reason):
    with pytest.raises(CitizenIdError) as exc:
        check_cccd(cid, birth, today=date(2026, 11, 28))
    assert exc.value.reason == reason


def test_cccd_decodes_sex_and_century():
    assert check_cccd("079305001234", "2005-01-01", today=date(2026, 1, 1)).sex == "female"
    info = check_cccd("001090012345", "1990-02-03", today=date(2026, 1, 1))
    assert (info.province, info.sex, info.birth_year) == ("001", "male", 1990)


async def test_invalid_ids_fail_before_any_call(lgsp_sync, lgsp_sandbox):
    for cid, birth in (("003090012345", None), ("001090012345", "1991-02-03")):
        r, reply = await post(lgsp_sync, ask(cid, **({"birth_date": birth} if birth else {})), LOOKUP)
        assert r.headers["ce-type"] == "vn.gov.dvc.citizen.lookup.failed"
        assert reply["reason"] in ("invalid_id", "mismatch")
    sim = lgsp_sandbox["lgsp"]
    assert sim.lookups == 0 and sim.token_requests == 0


async def test_purpose_and_requester_are_required(lgsp_sync, lgsp_sandbox):
    r, _ = await post(lgsp_sync, {"citizen_id": "001090012345", "requested_by": "x"}, LOOKUP)
    assert r.status_code == 400
    r, _ = await post(lgsp_sync, {"citizen_id": "001090012345", "purpose": "Xác minh"}, LOOKUP)
    assert r.status_code == 400


async def test_live_answer_then_cache_only_when_live_is_down(lgsp_sync, lgsp_sandbox, redis):
    from shared.integrations.lgsp.audit import records
    from shared.integrations.lgsp.crypto import sealer
    from shared.storage.redis import Keys

    sim = lgsp_sandbox["lgsp"]
    person, other = citizen(sim, 0), citizen(sim, 1)
    r, found = await post(lgsp_sync, ask(person["SoDinhDanh"], full_name=person["HoVaTen"],
                                         birth_date=iso(person["NgayThangNamSinh"])), LOOKUP)
    assert r.headers["ce-type"] == "vn.gov.dvc.citizen.found"
    assert found["source"] == "live" and found["full_name"] == person["HoVaTen"]
    assert found["birth_date"] == iso(person["NgayThangNamSinh"]) and found["as_of"].endswith("+07:00")
    assert sim.lookups == 1

    # cached, sealed, under a keyed hash: neither the id nor the name is readable in Redis
    keys = [k async for k in redis.scan_iter(match=f"dvci:{TEST_ENV}:{{lgsp}}:citizen:*")]
    assert len(keys) == 1 and person["SoDinhDanh"].encode() not in keys[0]
    blob = await redis.get(keys[0])
    assert person["SoDinhDanh"].encode() not in blob and person["HoVaTen"].encode() not in blob

    # live up: the live source answers (a changed record shows through), never the cache
    sim.population[person["SoDinhDanh"]] = {**person, "NoiThuongTru": "Địa chỉ mới"}
    _, again = await post(lgsp_sync, ask(person["SoDinhDanh"]), LOOKUP)
    assert again["source"] == "live" and again["permanent_address"] == "Địa chỉ mới" and sim.lookups == 2

    # live down: the cache answers, and says so
    sim.faults = Faults(error_rate=1.0, status=503)
    r, cached = await post(lgsp_sync, ask(person["SoDinhDanh"]), LOOKUP)
    assert r.headers["ce-type"] == "vn.gov.dvc.citizen.found"
    assert cached["source"] == "cache" and cached["permanent_address"] == "Địa chỉ mới"
    assert cached["as_of"] == again["as_of"]  # when the live source said it
    r, failed = await post(lgsp_sync, ask(other["SoDinhDanh"]), LOOKUP)  # never looked up: no cache
    assert r.headers["ce-type"] == "vn.gov.dvc.citizen.lookup.failed" and failed["reason"] == "unavailable"
    sim.faults = None

    # not found: its own answer
    r, nf = await post(lgsp_sync, ask("001090000000"), LOOKUP)
    assert r.headers["ce-type"] == "vn.gov.dvc.citizen.not_found" and nf == {"citizen_id": "001090000000"}

    # a name that contradicts the record
    r, mm = await post(lgsp_sync, ask(person["SoDinhDanh"], full_name="Tên Khác Hẳn"), LOOKUP)
    assert mm["reason"] == "mismatch"

    # every lookup audited: who, purpose, keyed hash of the id, outcome; no id in the clear
    audit = [a for a in await records(redis, Keys(TEST_ENV)) if a["action"] == "citizen.lookup"]
    assert [(a["outcome"], a.get("source")) for a in audit] == [
        ("found", "live"), ("found", "live"), ("found", "cache"), ("unavailable", None), ("not_found", None),
        ("mismatch", None)]
    h = sealer().id_hash(person["SoDinhDanh"])
    assert audit[0]["id_hash"] == h and audit[0]["who"] == "canbo.motcua@h22" and audit[0]["purpose"]
    flat = " ".join(" ".join(a.values()) for a in audit)
    assert person["SoDinhDanh"] not in flat and other["SoDinhDanh"] not in flat
