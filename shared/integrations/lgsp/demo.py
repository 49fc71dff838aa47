"""The lgsp_sync story of `make demo`: one dossier change in, synced to DVCQG and LGSP, and what the
sandboxes hold (wired into dvci/demo.py by `await lgsp_story(session, base)`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson


def _show(title: str, obj: object) -> None:
    print(title)
    print("   " + orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode().replace("\n", "\n   "), flush=True)


def demo_change(dossier_id: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return {"dossier_id": dossier_id, "version": 1, "agency_code": "000.00.01.H29", "procedure_code": "1.001612",
            "procedure_name": "Cấp giấy phép xây dựng nhà ở riêng lẻ", "status": "received", "changed_at": now,
            "received_at": now, "applicant": {"name": "Nguyễn Văn Mẫu", "type": "citizen"},
            "summary": "Đề nghị cấp giấy phép xây dựng", "intake_channel": "online", "result_delivery": "postal",
            "step": {"handler_name": "Trần Thị Tiếp Nhận", "handler_title": "Chuyên viên",
                     "department": "Bộ phận Một cửa", "action": "Tiếp nhận hồ sơ", "started_at": now}}


async def lgsp_story(session: aiohttp.ClientSession, base: str, label: str = "[demo lgsp]") -> bool:
    """Emit one `dossier.status.changed`; True when both targets answered `synced` and hold it."""
    from dvci import client

    dossier = f"000.00.01.H29-{datetime.now(UTC):%y%m%d}-{uuid.uuid4().hex[:4]}"
    event = client.make_event("vn.gov.dvc.dossier.status.changed", demo_change(dossier), source="/dvc/core/demo",
                              extensions={"dossierid": dossier, "partitionkey": dossier})
    print(f"\n{label} -> vn.gov.dvc.dossier.status.changed id={event.id}", flush=True)
    await client.post_event(session, base, event)
    chain = await client.follow(session, base, event, 20, ("vn.gov.dvc.dossier.sync.result",))
    results = [e for e in chain if e["type"] == "vn.gov.dvc.dossier.sync.result"]
    if not results:
        print(f"{label} FAILED: no sync.result; saw {[e['type'] for e in chain]}", flush=True)
        return False
    _show(f"{label} <- vn.gov.dvc.dossier.sync.result id={results[0]['id']}", results[0]["data"])
    sandbox = (client.dev_state().get("sandbox") or "http://127.0.0.1:8900").rstrip("/")
    async with session.get(f"{sandbox}/dvcqg/_sandbox/dossiers/{dossier}") as r:
        held = await r.json() if r.status == 200 else None
    if held:
        _show(f"{label} DVCQG holds (sandbox)", {"TrangThaiHoSo": held["record"]["TrangThaiHoSo"],
                                                 "NgayTiepNhan": held["record"]["NgayTiepNhan"],
                                                 "history": held["history"], "progress": len(held["progress"])})
    states = {t["target"]: t["state"] for t in results[0]["data"]["targets"]}
    return held is not None and states == {"dvcqg": "synced", "lgsp": "synced"}
