"""Cổng DVCQG (national public-service portal) through its adapter (docs/lgsp.md): session login,
then `{session, madonvi, service, ...}` posts: `DongBoHoSoMC` (the dossier record, isUpdating False the
first time), `CapNhatTienDoHoSoMC` (processing-step rows), `TraCuuHoSo` (what the portal holds).

Adapter answers: `error_code` "0"/"00" done; "01" session expired or invalid (log in again, once);
"02" a field missing or malformed (rejected, never retried); "03" the record exists (isUpdating was
False); "04" no such record (isUpdating was True); anything else: unavailable.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from shared.integrations import transport
from shared.integrations.lgsp import Pending, Pushed, mapping, portal_time
from shared.integrations.lgsp.credentials import SharedCredential
from shared.integrations.lgsp.crypto import Sealer
from shared.integrations.lgsp.settings import DvcqgSettings
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable
from shared.reliability.keys import event_digest
from shared.storage.redis import Keys

NAME = "dvcqg"
MAX_ROWS = 100  # progress rows per CapNhatTienDoHoSoMC call
#: awaited before every HTTP call (the syncer sets it to its rate slot)
Pace = Callable[[], Awaitable[Any]]
pace_var: contextvars.ContextVar[Pace | None] = contextvars.ContextVar("dvcqg_pace", default=None)


class AdapterError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def record_item(d: dict[str, Any]) -> dict[str, Any]:
    """One `DongBoHoSoMC` item from a `dossier.status.changed` payload (mappings/dvcqg.yaml)."""
    m = mapping("dvcqg")
    applicant = d.get("applicant") or {}
    status = d["status"]
    done = status in ("completed", "returned")
    return {
        "MaHoSo": d["dossier_id"], "MaTTHC": d["procedure_code"], "TenTTHC": d["procedure_name"],
        "MaLinhVuc": d.get("sector_code") or "", "TenLinhVuc": d.get("sector_name") or "",
        "SoBienNhan": d["dossier_id"], "ChuHoSo": applicant.get("name", ""),
        "LoaiDoiTuong": m["loai_doi_tuong"][applicant.get("type", "citizen")],
        "MaDoiTuong": applicant.get("id_number") or "", "ThongTinKhac": m["kenh_nop"][d["intake_channel"]],
        "Email": applicant.get("email") or "", "Fax": "", "SoDienThoai": applicant.get("phone") or "",
        "TrichYeuHoSo": d.get("summary", ""), "NgayTiepNhan": portal_time(d.get("received_at")),
        "NgayHenTra": portal_time(d.get("appointed_at")), "TrangThaiHoSo": m["trang_thai_ho_so"][status],
        "NgayTra": portal_time(d.get("returned_at")), "ThongTinTra": "",
        "HinhThuc": m["hinh_thuc"][d.get("result_delivery", "counter")],
        "NgayKetThucXuLy": portal_time(d.get("changed_at")) if done else "",
        "DonViXuLy": d["agency_code"], "GhiChu": d.get("note") or "",
        "TaiLieuNop": [{"TepDinhKemId": a["id"], "TenTepDinhKem": a["name"], "IsDeleted": "False",
                        "MaThanhPhanHoSo": a.get("component_code") or "", "DuongDanTaiTepTin": a["s3_key"]}
                       for a in d.get("attachments") or []],
        "DanhSachLePhi": [{"TenPhiLePhi": f["name"], "MaPhiLePhi": f["code"],
                           "HinhThucThu": m["hinh_thuc_thu"].get(f.get("method", "cash"), "1"),
                           "Gia": str(f["amount_vnd"]), "LoaiPhiLePhi": "1"} for f in d.get("fees") or []],
        "DanhSachTepDinhKemKhac": [], "DanhSachHoSoBoSung": [], "DanhSachGiayToKetQua": [],
    }


def progress_row(d: dict[str, Any]) -> dict[str, Any]:
    """One `CapNhatTienDoHoSoMC` row from a payload that has a `step`."""
    step = d["step"]
    return {"MaHoSo": d["dossier_id"], "NguoiXuLy": step["handler_name"], "ChucDanh": step["handler_title"],
            "ThoiDiemXuLy": portal_time(d["changed_at"]), "PhongBanXuLy": step["department"],
            "NoiDungXuLy": step["action"], "TrangThai": mapping("dvcqg")["trang_thai_ho_so"][d["status"]],
            "NgayBatDau": portal_time(step["started_at"]),
            "NgayKetThucTheoQuyDinh": portal_time(step.get("due_at"))}


class DvcqgTarget:
    name = NAME
    keeps_steps = True

    def __init__(self, settings: DvcqgSettings, redis, keys: Keys, sealer: Sealer):  # type: ignore[no-untyped-def]
        self.s = settings
        self.session = SharedCredential(redis, keys, "dvcqg-session", self._login, sealer, margin_s=0,
                                        provider=NAME)

    async def _post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        pace = pace_var.get()
        if pace is not None:
            await pace()
        status, raw = await transport.request(
            NAME, "POST", self.s.url + path, body=orjson.dumps(body),
            headers={"content-type": "application/json", **(headers or {})}, timeout_s=self.s.timeout_s, kind="lgsp")
        if status >= 500:
            raise ProviderAmbiguous(NAME, f"HTTP {status}")
        try:
            answer = orjson.loads(raw)
            if not isinstance(answer, dict):
                raise TypeError("not an object")
        except (orjson.JSONDecodeError, TypeError) as exc:
            if status >= 400:  # a gateway/proxy refusal before the adapter: not taken, try again later
                raise ProviderUnavailable(NAME, f"HTTP {status} without an adapter answer") from exc
            raise ProviderAmbiguous(NAME, f"unreadable answer (HTTP {status})") from exc
        return answer

    async def _login(self) -> tuple[str, float]:
        answer = await self._post(self.s.auth_endpoint, {"username": self.s.username,
                                                         "password": self.s.password.get_secret_value()})
        if str(answer.get("error_code")) not in ("0", "00") or not answer.get("session"):
            raise ProviderUnavailable(NAME, f"login refused: {answer.get('message', answer.get('error_code'))}")
        return str(answer["session"]), self.s.session_ttl_s

    async def call(self, service: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        """One service call; the session is re-established once when the adapter says it expired."""
        for attempt in (1, 2):
            session = await self.session.get()
            answer = await self._post(self.s.integration_endpoint,
                                      {"session": session, "madonvi": self.s.madonvi, "service": service, **body},
                                      headers)
            code = str(answer.get("error_code", ""))
            if code in ("0", "00"):
                return answer
            message = str(answer.get("message", ""))[:300]
            if code == "01" and attempt == 1:
                await self.session.invalidate(session)
                continue
            if code == "01":
                raise ProviderUnavailable(NAME, f"session refused right after login: {message}")
            if code in ("02",):
                raise ProviderRejected(NAME, "rejected", f"{service} {code}: {message}")
            if code in ("03", "04"):
                raise AdapterError(code, message)
            raise ProviderUnavailable(NAME, f"{service} error_code {code}: {message}")
        raise AssertionError("unreachable")

    async def exists(self, dossier_id: str) -> bool:
        return bool((await self.call("TraCuuHoSo", {"mahoso": dossier_id})).get("result"))

    async def current_status(self, dossier_id: str) -> str | None:
        result = (await self.call("TraCuuHoSo", {"mahoso": dossier_id})).get("result") or []
        return str(result[0].get("TrangThaiHoSo")) if result else None

    async def _records(self, items: list[Pending], updating: bool) -> None:
        """One DongBoHoSoMC for these records; each carries its own reference (a re-send of the same
        version keeps it, whichever batch it travels in)."""
        await self.call("DongBoHoSoMC", {"isUpdating": "True" if updating else "False",
                                         "data": [record_item(i.state) for i in items if i.state is not None]},
                        {"x-dvci-references": ",".join(event_digest(i.reference, "record", length=16)
                                                       for i in items),
                         "x-dvci-versions": ",".join(str(i.version) for i in items)})

    async def _rows(self, items: list[Pending]) -> None:
        """One CapNhatTienDoHoSoMC with the rows of these dossiers, each dossier's in version order."""
        rows: list[tuple[dict[str, Any], str, str]] = [
            (progress_row(step), event_digest(NAME, i.dossier_id, "step", str(v), length=16), str(v))
            for i in items for v, step in i.steps]
        for at in range(0, len(rows), MAX_ROWS):  # in order: a dossier's rows never overtake each other
            chunk = rows[at:at + MAX_ROWS]
            await self.call("CapNhatTienDoHoSoMC", {"data": [r for r, _, _ in chunk]},
                            {"x-dvci-references": ",".join(ref for _, ref, _ in chunk),
                             "x-dvci-versions": ",".join(v for _, _, v in chunk)})

    async def push(self, item: Pending) -> Pushed:
        calls = 0
        known = item.known
        if item.state is not None:
            if known is None:
                known = await self.exists(item.dossier_id)
                calls += 1
            try:
                calls += 1
                await self._records([item], known)
            except AdapterError as exc:  # our idea of "first push" was wrong: once the other way
                calls += 1
                known = exc.code == "03"
                try:
                    await self._records([item], known)
                except AdapterError as again:
                    raise ProviderRejected(NAME, "rejected", f"DongBoHoSoMC {again}") from again
        if item.steps:
            calls += 1
            try:
                await self._rows([item])
            except AdapterError as exc:
                raise ProviderRejected(NAME, "rejected", f"CapNhatTienDoHoSoMC {exc}") from exc
        return Pushed(known=True, calls=calls)

    async def push_many(self, items: list[Pending]) -> dict[str, ProviderRejected]:
        """Records and rows of several dossiers in as few calls as the adapter allows (isUpdating is per
        call: new and known records go separately). A refusal is found one by one; what the target refused
        is returned per dossier. Unavailable/ambiguous concern the whole batch (raised)."""
        refused: dict[str, ProviderRejected] = {}
        with_state = [i for i in items if i.state is not None]
        for updating in (False, True):
            group = [i for i in with_state if bool(i.known) == updating]
            if not group:
                continue
            try:
                await self._records(group, updating)
            except (AdapterError, ProviderRejected):
                for i in group:
                    try:
                        await self.push(Pending(i.dossier_id, i.version, i.state, [], i.known, i.reference))
                    except ProviderRejected as exc:
                        refused[i.dossier_id] = exc
        stepped = [i for i in items if i.steps and i.dossier_id not in refused]
        if stepped:
            try:
                await self._rows(stepped)
            except (AdapterError, ProviderRejected):
                for i in stepped:
                    try:
                        await self._rows([i])
                    except ProviderRejected as exc:
                        refused[i.dossier_id] = exc
                    except AdapterError as exc:
                        refused[i.dossier_id] = ProviderRejected(NAME, "rejected", f"CapNhatTienDoHoSoMC {exc}")
        return refused
