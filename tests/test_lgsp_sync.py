"""lgsp_sync over real HTTP: the DVCQG and LGSP sandboxes, real Redis; the function in process."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import orjson

from tests.conftest import LGSP_SANDBOX, TEST_ENV
from tests.helpers import binary, sdk_event

CHANGED = "vn.gov.dvc.dossier.status.changed"
PING = "dev.knative.sources.ping"


def change(dossier: str, version: int, status: str = "processing", *, step: bool = True,
           **kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "dossier_id": dossier, "version": version, "agency_code": "000.00.01.H22",
        "procedure_code": "1.001234", "procedure_name": "Cấp giấy phép xây dựng", "sector_code": "XD",
        "sector_name": "Xây dựng", "status": status, "changed_at": f"2026-11-28T01:{version:02d}:00+00:00",
        "received_at": "2026-11-27T23:30:00Z", "appointed_at": "2026-12-05T10:00:00+07:00",
        "applicant": {"name": "Nguyễn Văn Thử", "type": "citizen", "id_number": "001090012345",
                      "phone": "0912345678", "email": "thu@example.vn", "address": "Số 1 Phố Thử"},
        "summary": "Đề nghị cấp giấy phép xây dựng nhà ở", "intake_channel": "online",
        "result_delivery": "postal",
    }
    if step:
        data["step"] = {"handler_name": f"Cán bộ {version}", "handler_title": "Chuyên viên",
                        "department": "Phòng Quản lý đô thị", "action": f"Bước {version}",
                        "started_at": f"2026-11-28T08:{version:02d}:00+07:00",
                        "due_at": "2026-11-30T17:00:00+07:00"}
    data.update(kw)
    return data


def dossier_id() -> str:
    return f"000.00.01.H22-{uuid.uuid4().hex[:10]}"


async def post(client, data: dict[str, Any], type_: str = CHANGED, id_: str | None = None):
    h, b = binary(sdk_event(data, type_, id_=id_))
    r = await client.post("/", headers=h, content=b)
    return r, (orjson.loads(r.content) if r.status_code == 200 else None)


def states(reply: dict[str, Any]) -> dict[str, str]:
    return {t["target"]: t["state"] for t in reply["targets"]}


async def sandbox_get(path: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(LGSP_SANDBOX + path) as r:
        return await r.json() if r.status == 200 else None


async def sandbox_post(path: str, body: dict[str, Any] | None = None) -> Any:
    async with aiohttp.ClientSession() as s, s.post(LGSP_SANDBOX + path, json=body or {}) as r:
        return await r.json()


def service():
    from shared.integrations.lgsp.service import build

    return build(TEST_ENV)


async def test_first_push_then_updates_both_targets_in_vietnam_time(lgsp_sync, lgsp_sandbox):
    d = dossier_id()
    r, reply = await post(lgsp_sync, change(d, 1, "received"))
    assert r.status_code == 200 and r.headers["ce-type"] == "vn.gov.dvc.dossier.sync.result"
    assert states(reply) == {"dvcqg": "synced", "lgsp": "synced"}
    held = await sandbox_get(f"/dvcqg/_sandbox/dossiers/{d}")
    assert [h["version"] for h in held["history"]] == [1] and held["history"][0]["isUpdating"] is False
    rec = held["record"]
    assert rec["NgayTiepNhan"] == "20261128063000"  # 23:30Z -> 06:30 next day in Asia/Ho_Chi_Minh
    assert rec["NgayHenTra"] == "20261205100000" and rec["TrangThaiHoSo"] == "2"
    assert rec["HinhThuc"] == "1" and rec["LoaiDoiTuong"] == "1" and rec["ThongTinKhac"] == "Trực tuyến"
    assert [(p["version"], p["ThoiDiemXuLy"]) for p in held["progress"]] == [(1, "20261128080100")]
    doc = await sandbox_get(f"/lgsp/_sandbox/documents/{d}")
    assert doc["document"]["DateReceived"] == "2026-11-28T06:30:00.000+0700"

    event_id = str(uuid.uuid4())
    r2, reply2 = await post(lgsp_sync, change(d, 2, "completed"), id_=event_id)
    assert states(reply2) == {"dvcqg": "synced", "lgsp": "synced"}
    held = await sandbox_get(f"/dvcqg/_sandbox/dossiers/{d}")
    assert [(h["version"], h["isUpdating"]) for h in held["history"]] == [(1, False), (2, True)]
    assert held["record"]["TrangThaiHoSo"] == "9" and held["record"]["NgayKetThucXuLy"] == "20261128080200"
    stats = await sandbox_get("/dvcqg/_sandbox/stats")
    assert stats["calls"].get("TraCuuHoSo", 0) == 0  # the first push was known to be the first
    # a redelivery answers the stored reply and sends nothing
    r3, _ = await post(lgsp_sync, change(d, 2, "completed"), id_=event_id)
    assert r3.content == r2.content
    assert (await sandbox_get("/dvcqg/_sandbox/stats"))["calls"] == stats["calls"]


async def test_older_version_is_superseded_never_sent(lgsp_sync, lgsp_sandbox):
    d = dossier_id()
    _, reply = await post(lgsp_sync, change(d, 3))
    assert states(reply) == {"dvcqg": "synced", "lgsp": "synced"}
    _, late = await post(lgsp_sync, change(d, 2))
    assert states(late) == {"dvcqg": "superseded", "lgsp": "superseded"}
    held = await sandbox_get(f"/dvcqg/_sandbox/dossiers/{d}")
    assert [h["version"] for h in held["history"]] == [3]
    assert [p["version"] for p in held["progress"]] == [3]
    assert held["history"][0]["isUpdating"] is False  # the first push, whatever its version
    assert [h["version"] for h in (await sandbox_get(f"/lgsp/_sandbox/documents/{d}"))["history"]] == [3]


async def test_target_validation_error_is_rejected_not_retried(lgsp_sync, lgsp_sandbox, redis):
    from shared.integrations.lgsp.audit import records
    from shared.storage.redis import Keys

    d = dossier_id()
    r, reply = await post(lgsp_sync, change(d, 1, procedure_code="XYZ"))
    assert r.status_code == 200
    targets = {t["target"]: t for t in reply["targets"]}
    assert targets["dvcqg"]["state"] == "rejected" and "MaTTHC" in targets["dvcqg"]["detail"]
    assert targets["lgsp"]["state"] == "synced"
    assert await sandbox_get(f"/dvcqg/_sandbox/dossiers/{d}") is None
    calls = (await sandbox_get("/dvcqg/_sandbox/stats"))["calls"]
    assert calls == {"DongBoHoSoMC": 1}  # no retry, no progress rows for a record that was refused
    rows = [x for x in await records(redis, Keys(TEST_ENV)) if x["action"] == "sync.rejected"]
    assert rows and rows[-1]["target"] == "dvcqg" and rows[-1]["dossier"] == d
    # the queue holds nothing for it: a later valid version goes through
    _, reply = await post(lgsp_sync, change(d, 2))
    assert states(reply)["dvcqg"] == "synced"
    assert (await service().syncer.status())[0]["queued"] == 0


async def test_dvcqg_session_reestablished_once_when_expired(lgsp_sync, lgsp_sandbox):
    d = dossier_id()
    await post(lgsp_sync, change(d, 1, "received"))
    assert (await sandbox_get("/dvcqg/_sandbox/stats"))["logins"] == 1
    await sandbox_post("/dvcqg/_sandbox/expire-sessions")
    _, reply = await post(lgsp_sync, change(d, 2))
    assert states(reply)["dvcqg"] == "synced"
    stats = await sandbox_get("/dvcqg/_sandbox/stats")
    assert stats["logins"] == 2
    assert stats["calls"]["DongBoHoSoMC"] == 3  # v1, v2 refused (session expired), v2 again
    held = await sandbox_get(f"/dvcqg/_sandbox/dossiers/{d}")
    assert [h["version"] for h in held["history"]] == [1, 2]


async def test_lgsp_token_single_flight_after_expiry(lgsp_sandbox, redis):
    from shared.integrations.lgsp.lgsp import document

    svc = service()
    margin = svc.lgsp.s.token_margin_s
    await sandbox_post("/lgsp/_sandbox/config", {"expires_in": int(margin) + 1})  # cached for 1 s
    assert await svc.lgsp.token.get()
    assert lgsp_sandbox["lgsp"].token_requests == 1
    await asyncio.sleep(1.2)  # the cached token is past its refresh margin: gone from Redis

    async def one(i: int) -> int:
        status, _ = await svc.lgsp.post("/Document/SyncDocument", document(change(f"TOK-{i}", 1)))
        return status

    assert await asyncio.gather(*(one(i) for i in range(50))) == [200] * 50
    assert lgsp_sandbox["lgsp"].token_requests == 2  # 50 concurrent calls after expiry -> 1 token request

    # the gateway refuses every token it issued (401): invalidated once, refreshed once, retried once
    await sandbox_post("/lgsp/_sandbox/config", {"expires_in": 3600})
    await sandbox_post("/lgsp/_sandbox/expire-tokens")
    assert await asyncio.gather(*(one(i) for i in range(50))) == [200] * 50
    assert lgsp_sandbox["lgsp"].token_requests == 3
    blob = await redis.get(svc.lgsp.token.key)
    assert blob is not None and b"Bearer" not in blob  # sealed in Redis


async def test_outage_queues_then_drain_job_delivers_latest_and_every_step(lgsp_sync, lgsp_sandbox):
    d = dossier_id()
    await post(lgsp_sync, change(d, 1, "received"))
    await sandbox_post("/dvcqg/_sandbox/faults", {"error_rate": 1.0, "status": 503})
    for v in (2, 3, 4, 5):
        _, reply = await post(lgsp_sync, change(d, v))
        assert states(reply) == {"dvcqg": "queued", "lgsp": "synced"}
    status = {r["target"]: r for r in await service().syncer.status()}
    assert status["dvcqg"]["queued"] == 1 and status["dvcqg"]["breaker"] == "open"
    # the breaker stopped the calls after three failures
    assert (await sandbox_get("/dvcqg/_sandbox/stats"))["calls"]["DongBoHoSoMC"] == 1
    async with aiohttp.ClientSession() as s:
        await s.delete(LGSP_SANDBOX + "/dvcqg/_sandbox/faults")
    await asyncio.sleep(0.35)  # breaker cool-down (compressed for tests)
    r, _ = await post(lgsp_sync, {"job": "lgsp-drain"}, PING)
    assert r.status_code == 202
    held = await sandbox_get(f"/dvcqg/_sandbox/dossiers/{d}")
    assert [h["version"] for h in held["history"]] == [1, 5]  # coalesced to the latest state
    assert [p["version"] for p in held["progress"]] == [1, 2, 3, 4, 5]  # every step, in order
    assert (await service().syncer.status())[0]["queued"] == 0


async def test_daily_reconcile_repushes_what_the_portal_holds_differently(lgsp_sync, lgsp_sandbox):
    a, b, c = dossier_id(), dossier_id(), dossier_id()
    for d in (a, b, c):
        await post(lgsp_sync, change(d, 1, "received"))
    held = lgsp_sandbox["dvcqg"].dossiers
    held[a]["record"]["TrangThaiHoSo"] = "1"  # the portal lost an update
    del held[b]  # ... and a whole record
    r, _ = await post(lgsp_sync, {"job": "lgsp-reconcile"}, PING)
    assert r.status_code == 202
    assert held[a]["record"]["TrangThaiHoSo"] == "2" and [h["version"] for h in held[a]["history"]] == [1, 1]
    assert held[b]["record"]["TrangThaiHoSo"] == "2" and held[b]["history"][-1]["isUpdating"] is False
    assert len(held[c]["history"]) == 1
    counts = await service().syncer.reconcile()
    assert counts == {"checked": 3, "matching": 3, "repushed": 0, "missing": 0, "errors": 0, "done": 1}
    # a run out of time leaves its cursor; the next drain tick carries on from it
    held[c]["record"]["TrangThaiHoSo"] = "8"
    partial = await service().syncer.reconcile(budget_s=0)
    assert partial["done"] == 0 and partial["checked"] == 0
    r, _ = await post(lgsp_sync, {"job": "lgsp-drain"}, PING)
    assert r.status_code == 202 and held[c]["record"]["TrangThaiHoSo"] == "2"
    assert await service().syncer.reconcile(resume=True) == {}


async def test_cli_status_and_audited_resync(lgsp_sync, lgsp_sandbox, redis):
    import os
    import sys

    from shared.integrations.lgsp.audit import records
    from shared.storage.redis import Keys, resolve_url

    d = dossier_id()
    await post(lgsp_sync, change(d, 1, "received", step=False))
    env = {**os.environ, "REDIS_URL": resolve_url(), "DVCI_ENV": TEST_ENV, "DVCI_LOG_LEVEL": "WARNING"}

    async def dvci(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "dvci.cli", *args, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode() + err.decode()

    code, out = await dvci("lgsp", "status", "--json")
    assert code == 0, out
    rows = {r["target"]: r for r in orjson.loads(out)}
    assert rows["dvcqg"]["queued"] == 0 and rows["dvcqg"]["breaker"] == "closed" and rows["dvcqg"]["last_success"]
    code, out = await dvci("lgsp", "resync", d, "--reason", "portal lost the record")
    assert code == 0 and f"{d} -> dvcqg: synced" in out and f"{d} -> lgsp: synced" in out, out
    assert [h["version"] for h in lgsp_sandbox["dvcqg"].dossiers[d]["history"]] == [1, 1]
    rows = [x for x in await records(redis, Keys(TEST_ENV)) if x["action"] == "sync.resync"]
    from shared.security.audit import operator

    assert rows[-1]["by"] == operator() and rows[-1]["reason"] == "portal lost the record"
    code, out = await dvci("lgsp", "resync", "UNKNOWN-1", "--reason", "typo")
    assert code == 1 and "unknown dossier" in out


async def test_ambiguous_push_is_resent_under_the_same_reference(lgsp_sync, lgsp_sandbox):
    from sandbox.base import Faults

    d = dossier_id()
    sim = lgsp_sandbox["dvcqg"]
    await post(lgsp_sync, change(dossier_id(), 1, "received"))  # logged in
    sim.calls.clear()
    sim.faults = Faults(timeout_rate=1.0, hang_s=1.5, count=1)  # the portal takes the record, answers late
    _, reply = await post(lgsp_sync, change(d, 1, "received"))
    assert states(reply)["dvcqg"] == "queued"
    assert [h["version"] for h in sim.dossiers[d]["history"]] == [1]  # it did arrive
    await asyncio.sleep(0.4)
    r, _ = await post(lgsp_sync, {"job": "lgsp-drain"}, PING)
    assert r.status_code == 202
    assert [h["version"] for h in sim.dossiers[d]["history"]] == [1]  # re-sent, de-duplicated by reference
    assert [p["version"] for p in sim.dossiers[d]["progress"]] == [1]
    assert sim.duplicates == 1 and sim.calls["TraCuuHoSo"] == 1  # unsure after a timeout: asked first
    assert (await service().syncer.status())[0]["queued"] == 0
