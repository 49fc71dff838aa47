"""Cổng DVCQG adapter simulator (docs/lgsp.md, OpenCPS's DVCQGIntegrationActionImpl):

    POST /api/auth         {username, password}                -> {session, error_code: 0}
    POST /api/integration  {session, madonvi, service, ...}    -> {error_code: "00", ...}
        DongBoHoSoMC        {isUpdating: "True"|"False", data: [item]}
        CapNhatTienDoHoSoMC {data: [row]}
        TraCuuHoSo          {mahoso}                            -> {error_code: "00", result: [record]}
    error_code: "01" session expired/invalid, "02" field missing or malformed (message names it),
                "03" record exists (isUpdating False), "04" no such record, "99" unknown service.

Validated like the real adapter: required fields, dates `yyyyMMddHHmmss`, codes (TrangThaiHoSo 1-10,
LoaiDoiTuong 1/2, HinhThuc 0/1, MaTTHC like 1.001234). Pushes carrying `x-dvci-reference` are
Pushes carry `x-dvci-references` and `x-dvci-versions` (comma-separated, one per record or row): an item
whose reference was seen is not applied again (a re-send after a timeout does not count twice), and the
versions are recorded in the push history.

Control:
    POST   /dvcqg/_sandbox/expire-sessions        every session expires (the next call gets "01")
    GET    /dvcqg/_sandbox/dossiers/<id>          {record, progress, history}
    GET    /dvcqg/_sandbox/dossiers               {id: {versions, progress_versions, status}}
    DELETE /dvcqg/_sandbox/dossiers               forget every dossier
    GET    /dvcqg/_sandbox/stats                  {logins, calls: {service: n}, duplicates}
"""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from sandbox.base import Handler, Simulator

_DATE = re.compile(r"^\d{14}$")
_TTHC = re.compile(r"^[1-9]\.\d{5,6}$")
_REQUIRED = ("MaHoSo", "MaTTHC", "TenTTHC", "ChuHoSo", "LoaiDoiTuong", "NgayTiepNhan", "TrangThaiHoSo",
             "HinhThuc", "DonViXuLy")
_DATES = ("NgayTiepNhan", "NgayHenTra", "NgayTra", "NgayKetThucXuLy")
_ROW_REQUIRED = ("MaHoSo", "NguoiXuLy", "ThoiDiemXuLy", "NoiDungXuLy", "TrangThai")
_ROW_DATES = ("ThoiDiemXuLy", "NgayBatDau", "NgayKetThucTheoQuyDinh")


def answer(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _bad_date(value: Any) -> bool:
    if not isinstance(value, str) or not _DATE.match(value):
        return True
    try:
        datetime.strptime(value, "%Y%m%d%H%M%S")
    except ValueError:
        return True
    return False


class DvcqgSimulator(Simulator):
    name = "dvcqg"

    def __init__(self, *, username: str = "sandbox", password: str = "sandbox", **kw: Any):
        super().__init__(**kw)
        self.username, self.password = username, password
        self.sessions: set[str] = set()
        self.dossiers: dict[str, dict[str, Any]] = {}
        self.logins = 0
        self.calls: Counter[str] = Counter()
        self.duplicates = 0
        self.seen_refs: set[str] = set()

    def reset(self) -> None:
        self.sessions.clear()
        self.dossiers.clear()
        self.logins = self.duplicates = 0
        self.calls.clear()
        self.seen_refs.clear()

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/_sandbox/expire-sessions", self._expire)
        app.router.add_get("/_sandbox/dossiers", self._all)
        app.router.add_delete("/_sandbox/dossiers", self._forget)
        app.router.add_get("/_sandbox/dossiers/{id}", self._one)
        app.router.add_get("/_sandbox/stats", self._stats)
        return app

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/api/auth", self.auth), ("POST", "/api/integration", self.integration)]

    # -- the adapter ---------------------------------------------------------------------------
    async def auth(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return answer({"error_code": 1, "message": "Dữ liệu không hợp lệ"})
        self.receive(None, {"service": "auth"})
        if body.get("username") != self.username or body.get("password") != self.password:
            return answer({"error_code": 1, "message": "Sai tên đăng nhập hoặc mật khẩu"})
        self.logins += 1
        session = secrets.token_hex(16)
        self.sessions.add(session)
        return answer({"session": session, "error_code": 0})

    async def integration(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            service = str(body["service"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return answer({"error_code": "02", "message": "Thiếu tham số service"})
        refs = [r for r in request.headers.get("x-dvci-references", "").split(",") if r]
        versions = [int(v) if v.isdigit() else None for v in request.headers.get("x-dvci-versions", "").split(",")]
        self.receive(None, {"service": service, "items": len(refs)})
        for r in refs:
            self.by_reference[r] += 1
        self.calls[service] += 1
        if body.get("session") not in self.sessions:
            return answer({"error_code": "01", "message": "Phiên làm việc không hợp lệ hoặc đã hết hạn"})
        if not body.get("madonvi"):
            return answer({"error_code": "02", "message": "Thiếu madonvi"})
        if service == "TraCuuHoSo":
            rec = self.dossiers.get(str(body.get("mahoso", "")))
            return answer({"error_code": "00", "result": [rec["record"]] if rec else []})
        if service == "DongBoHoSoMC":
            return self._sync(body, refs, versions)
        if service == "CapNhatTienDoHoSoMC":
            return self._progress(body, refs, versions)
        return answer({"error_code": "99", "message": f"Dịch vụ {service} không tồn tại"})

    def _fresh(self, refs: list[str], n: int) -> list[bool]:
        """Per item: not seen before (items without a reference are always applied)."""
        return [not (i < len(refs) and refs[i] in self.seen_refs) for i in range(n)]

    def _sync(self, body: dict[str, Any], refs: list[str], versions: list[int | None]) -> web.Response:
        updating = body.get("isUpdating")
        if updating not in ("True", "False"):
            return answer({"error_code": "02", "message": "isUpdating phải là True hoặc False"})
        items = body.get("data")
        if not isinstance(items, list) or not items:
            return answer({"error_code": "02", "message": "data phải là danh sách hồ sơ"})
        for item in items:
            problem = self._invalid(item)
            if problem:
                return answer({"error_code": "02", "message": problem})
        fresh = self._fresh(refs, len(items))
        for item, new in zip(items, fresh, strict=True):
            if not new:
                continue
            exists = item["MaHoSo"] in self.dossiers
            if updating == "False" and exists:
                return answer({"error_code": "03", "message": f"Hồ sơ {item['MaHoSo']} đã tồn tại"})
            if updating == "True" and not exists:
                return answer({"error_code": "04", "message": f"Không tìm thấy hồ sơ {item['MaHoSo']}"})
        for i, (item, new) in enumerate(zip(items, fresh, strict=True)):
            if not new:
                self.duplicates += 1
                continue
            if i < len(refs):
                self.seen_refs.add(refs[i])
            rec = self.dossiers.setdefault(item["MaHoSo"], {"record": None, "progress": [], "history": []})
            rec["record"] = item
            rec["history"].append({"version": versions[i] if i < len(versions) else None,
                                   "isUpdating": updating == "True", "TrangThaiHoSo": item["TrangThaiHoSo"],
                                   "at": time.time()})
        return answer({"error_code": "00"})

    def _progress(self, body: dict[str, Any], refs: list[str], versions: list[int | None]) -> web.Response:
        rows = body.get("data")
        if not isinstance(rows, list) or not rows:
            return answer({"error_code": "02", "message": "data phải là danh sách tiến độ"})
        for row in rows:
            missing = [f for f in _ROW_REQUIRED if not row.get(f)]
            if missing:
                return answer({"error_code": "02", "message": f"Thiếu trường {missing[0]}"})
            for f in _ROW_DATES:
                if row.get(f) and _bad_date(row[f]):
                    return answer({"error_code": "02", "message": f"{f} sai định dạng yyyyMMddHHmmss"})
            if row["MaHoSo"] not in self.dossiers:
                return answer({"error_code": "04", "message": f"Không tìm thấy hồ sơ {row['MaHoSo']}"})
        for i, (row, new) in enumerate(zip(rows, self._fresh(refs, len(rows)), strict=True)):
            if not new:
                self.duplicates += 1
                continue
            if i < len(refs):
                self.seen_refs.add(refs[i])
            self.dossiers[row["MaHoSo"]]["progress"].append(
                {**row, "version": versions[i] if i < len(versions) else None})
        return answer({"error_code": "00"})

    @staticmethod
    def _invalid(item: Any) -> str | None:
        if not isinstance(item, dict):
            return "Hồ sơ phải là đối tượng"
        missing = [f for f in _REQUIRED if not item.get(f)]
        if missing:
            return f"Thiếu trường {missing[0]}"
        for f in _DATES:
            if item.get(f) and _bad_date(item[f]):
                return f"{f} sai định dạng yyyyMMddHHmmss"
        if not _TTHC.match(str(item["MaTTHC"])):
            return "MaTTHC không đúng mã thủ tục hành chính quốc gia"
        if item["LoaiDoiTuong"] not in ("1", "2"):
            return "LoaiDoiTuong phải là 1 hoặc 2"
        if item["HinhThuc"] not in ("0", "1"):
            return "HinhThuc phải là 0 hoặc 1"
        if item["TrangThaiHoSo"] not in {str(i) for i in range(1, 11)}:
            return "TrangThaiHoSo ngoài danh mục 1-10"
        return None

    # -- control ----------------------------------------------------------------------------------
    async def _expire(self, request: web.Request) -> web.Response:
        n = len(self.sessions)
        self.sessions.clear()
        return web.json_response({"expired": n})

    async def _one(self, request: web.Request) -> web.Response:
        rec = self.dossiers.get(request.match_info["id"])
        if rec is None:
            return web.json_response({"title": "unknown dossier", "status": 404}, status=404,
                                     content_type="application/problem+json")
        return web.json_response(rec)

    async def _all(self, request: web.Request) -> web.Response:
        return web.json_response({k: {"versions": [h["version"] for h in v["history"]],
                                      "progress_versions": [p["version"] for p in v["progress"]],
                                      "status": v["record"]["TrangThaiHoSo"]} for k, v in self.dossiers.items()})

    async def _forget(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"cleared": True})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"logins": self.logins, "calls": dict(self.calls), "duplicates": self.duplicates,
                                  "dossiers": len(self.dossiers)})
