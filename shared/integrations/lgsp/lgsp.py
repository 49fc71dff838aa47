"""The provincial LGSP (integration platform, WSO2-style gateway; docs/lgsp.md): OAuth2 client
credentials (`POST /token`), then `POST /Document/SyncDocument` with `Authorization: <type> <token>`
-> `{status, message}`. The token is cached in Redis for the whole fleet (sealed, refreshed
`token_margin_s` before it expires by one instance at a time); a 401 invalidates it and retries once.
HTTP 400 is the gateway's validation refusal: rejected, never retried.

The population database (CSDLQG về dân cư) is reached through the same gateway; no public contract
exists, so `population_path` takes `{SoDinhDanh, HoVaTen, NgayThangNamSinh (yyyyMMdd), MaYeuCau}` and
answers `{status, data: {SoDinhDanh, HoVaTen, NgayThangNamSinh, GioiTinh, NoiThuongTru}}` or 404
(ASSUMED shape: replace with C06's contract when the province receives it).
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from shared.integrations import transport
from shared.integrations.lgsp import HCM, Pending, Pushed, mapping
from shared.integrations.lgsp.credentials import SharedCredential
from shared.integrations.lgsp.crypto import Sealer
from shared.integrations.lgsp.settings import LgspSettings
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable
from shared.reliability.keys import event_digest
from shared.storage.redis import Keys

NAME = "lgsp"
pace_var: contextvars.ContextVar[Callable[[], Awaitable[Any]] | None] = contextvars.ContextVar("lgsp_pace",
                                                                                             default=None)
_NO_DATE = "0000-00-00T00:00:00.000+0700"


def lgsp_time(value: str | None) -> str:
    """`yyyy-MM-ddTHH:mm:ss.SSS+0700` (Vietnam time), the gateway's placeholder when absent."""
    if not value:
        return _NO_DATE
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=HCM)
    return dt.astimezone(HCM).strftime("%Y-%m-%dT%H:%M:%S.000%z")


def document(d: dict[str, Any]) -> dict[str, Any]:
    """SyncDocument body (OpenCPS converter's fields) from a `dossier.status.changed` payload."""
    m = mapping("lgsp")
    applicant = d.get("applicant") or {}
    status = d["status"]
    delivery = d.get("result_delivery", "counter")
    return {
        "DocTypeCode": d["procedure_code"], "DocTypeName": d["procedure_name"], "DocCode": d["dossier_id"],
        "CitizenName": applicant.get("name", ""), "CitizenInfo": "",
        "ApplicantsId": applicant.get("id_number") or "",
        "ApplicantsType": m["applicants_type"][applicant.get("type", "citizen")],
        "Address": applicant.get("address") or "", "Email": applicant.get("email") or "",
        "Phone": applicant.get("phone") or "", "Compendium": d.get("summary", ""),
        "DateReceived": lgsp_time(d.get("received_at")), "DateAppointed": lgsp_time(d.get("appointed_at")),
        "IsSuccess": status == "completed", "SuccessDate": lgsp_time(d["changed_at"]) if status == "completed"
        else _NO_DATE, "ApproverName": "", "ApproverPosition": "", "SuccessNote": "",
        "IsReturned": status == "returned", "ReturnedDate": lgsp_time(d.get("returned_at")),
        "ReturnNote": "", "ReturnedType": m["returned_type"][delivery],
        "FinishedDate": lgsp_time(d["changed_at"]) if status in ("completed", "returned") else _NO_DATE,
        "Status": m["status"][status], "ProcessingOrganName": d["agency_code"],
        "HasSupplementary": status == "supplement_requested", "Note": d.get("note") or "",
        "Attachments": [{"AttachmentId": a["id"], "AttachmentName": a["name"], "IsDeleted": False,
                         "IsVerified": True, "Base64": ""} for a in d.get("attachments") or []],
    }


class LgspClient:
    """Authorised calls to the gateway."""

    def __init__(self, settings: LgspSettings, redis, keys: Keys, sealer: Sealer):  # type: ignore[no-untyped-def]
        self.s = settings
        self.token = SharedCredential(redis, keys, "lgsp-token", self._fetch_token, sealer,
                                      margin_s=settings.token_margin_s, provider=NAME)

    async def _fetch_token(self) -> tuple[str, float]:
        form = urlencode({"grant_type": "client_credentials", "client_id": self.s.client_id,
                          "client_secret": self.s.client_secret.get_secret_value()}).encode()
        status, raw = await transport.request(
            NAME, "POST", self.s.url + self.s.token_path, body=form,
            headers={"content-type": "application/x-www-form-urlencoded"}, timeout_s=self.s.timeout_s, kind="lgsp")
        if status != 200:
            raise ProviderUnavailable(NAME, f"token endpoint answered HTTP {status}")
        try:
            answer = orjson.loads(raw)
            value = f"{answer.get('token_type', 'Bearer')} {answer['access_token']}"
            return value, float(answer.get("expires_in", 300))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ProviderUnavailable(NAME, "unreadable token answer") from exc

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None,
                   *, provider: str = NAME) -> tuple[int, dict[str, Any]]:
        for attempt in (1, 2):
            pace = pace_var.get()
            if pace is not None:
                await pace()
            token = await self.token.get()
            status, raw = await transport.request(
                provider, "POST", self.s.url + path, body=orjson.dumps(body),
                headers={"content-type": "application/json", "authorization": token, **(headers or {})},
                timeout_s=self.s.timeout_s, kind="lgsp")
            if status == 401:
                await self.token.invalidate(token)
                if attempt == 1:
                    continue
                raise ProviderUnavailable(provider, "token refused right after refresh")
            if status >= 500:
                raise ProviderAmbiguous(provider, f"HTTP {status}")
            try:
                answer = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError as exc:
                raise ProviderAmbiguous(provider, f"unreadable answer (HTTP {status})") from exc
            return status, answer if isinstance(answer, dict) else {}
        raise AssertionError("unreachable")


class LgspTarget:
    name = NAME
    keeps_steps = False

    def __init__(self, client: LgspClient):
        self.client = client

    async def push(self, item: Pending) -> Pushed:
        if item.state is None:
            return Pushed(calls=0)
        status, answer = await self.client.post(self.client.s.sync_path, document(item.state), {
            "x-dvci-reference": event_digest(item.reference, "document"), "x-dvci-version": str(item.version)})
        if status == 400 or str(answer.get("status")) == "400":
            raise ProviderRejected(NAME, "rejected", f"SyncDocument: {str(answer.get('message', ''))[:300]}")
        if status != 200:
            raise ProviderUnavailable(NAME, f"SyncDocument HTTP {status}")
        return Pushed()

    async def current_status(self, dossier_id: str) -> str | None:
        return None  # the gateway has no read-back; reconcile asks DVCQG only


class LgspPopulation:
    """PopulationSource over the LGSP gateway (assumed contract, see the module docstring)."""

    name = "population"

    def __init__(self, client: LgspClient):
        self.client = client

    async def lookup(self, citizen_id: str, full_name: str | None, birth_date: str | None,
                     request_id: str) -> dict[str, Any] | None:
        body = {"SoDinhDanh": citizen_id, "HoVaTen": full_name or "",
                "NgayThangNamSinh": (birth_date or "").replace("-", ""), "MaYeuCau": request_id}
        status, answer = await self.client.post(self.client.s.population_path, body, provider="population")
        if status == 404:
            return None
        if status != 200 or not isinstance(answer.get("data"), dict):
            raise ProviderUnavailable("population", f"lookup HTTP {status}")
        data = answer["data"]
        born = str(data.get("NgayThangNamSinh", ""))
        return {"citizen_id": str(data.get("SoDinhDanh", citizen_id)), "full_name": str(data.get("HoVaTen", "")),
                "birth_date": f"{born[:4]}-{born[4:6]}-{born[6:8]}" if len(born) == 8 else born,
                "gender": {"1": "male", "2": "female"}.get(str(data.get("GioiTinh")), "unknown"),
                "permanent_address": str(data.get("NoiThuongTru", ""))}
