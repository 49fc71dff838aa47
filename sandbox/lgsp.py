"""Provincial LGSP gateway simulator (docs/lgsp.md; WSO2-style OAuth2 client credentials):

    POST /token  (form: grant_type=client_credentials, client_id, client_secret)
         -> 200 {access_token, token_type: "Bearer", expires_in, scope} | 401 {error: "invalid_client"}
    POST /Document/SyncDocument  Authorization: Bearer <token>   (OpenCPS converter's body)
         -> 200 {status: "200", message} | 400 {status: "400", message} | 401 {status: "401", message}
    POST /csdlqgdc/v1/citizens/lookup  Authorization: Bearer <token>   (ASSUMED: no public contract)
         {SoDinhDanh, HoVaTen, NgayThangNamSinh (yyyyMMdd), MaYeuCau}
         -> 200 {status: "200", data: {SoDinhDanh, HoVaTen, NgayThangNamSinh, GioiTinh (1 male, 2 female),
                                       NoiThuongTru}} | 404 {status: "404", message}

The population is seeded (fixed seed) with fictitious citizens whose CCCDs pass the checks.

Control:
    POST /lgsp/_sandbox/expire-tokens        every token issued so far is refused (401)
    POST /lgsp/_sandbox/config               {"expires_in": seconds}
    GET  /lgsp/_sandbox/stats                {token_requests, sync_calls, lookups, duplicates}
    GET  /lgsp/_sandbox/documents/<DocCode>  {document, history}
    GET  /lgsp/_sandbox/citizens?n=5         some seeded citizens (to look up)
"""

from __future__ import annotations

import random
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from sandbox.base import Handler, Simulator

_LGSP_DATE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}|0000-00-00T00:00:00\.000\+0700)$")
_PROVINCES = ["001", "031", "048", "079", "092", "038", "040", "046", "056", "075"]
_FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ"]
_MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Thanh", "Đức", "Thu", "Hữu"]
_GIVEN = ["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hùng", "Lan", "Long", "Mai", "Nam", "Phương", "Quân",
          "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Yến"]


def answer(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def seeded_population(n: int = 300, seed: int = 20250701) -> dict[str, dict[str, str]]:
    """Fictitious citizens with consistent CCCDs (province, sex/century digit, year of birth)."""
    rng = random.Random(seed)
    people: dict[str, dict[str, str]] = {}
    while len(people) < n:
        year = rng.randint(1940, 2007)
        female = rng.random() < 0.5
        digit = (0 if year < 2000 else 2) + (1 if female else 0)
        cccd = f"{rng.choice(_PROVINCES)}{digit}{year % 100:02d}{rng.randrange(10**6):06d}"
        born = f"{year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        name = f"{rng.choice(_FAMILY)} {'Thị' if female else rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"
        people[cccd] = {"SoDinhDanh": cccd, "HoVaTen": name, "NgayThangNamSinh": born,
                        "GioiTinh": "2" if female else "1",
                        "NoiThuongTru": f"Số {rng.randint(1, 200)}, Phường Thử Nghiệm {rng.randint(1, 20)}"}
    return people


class LgspSimulator(Simulator):
    name = "lgsp"

    def __init__(self, *, client_id: str = "sandbox-client", client_secret: str = "sandbox-secret", **kw: Any):
        super().__init__(**kw)
        self.client_id, self.client_secret = client_id, client_secret
        self.expires_in = 3600
        self.tokens: dict[str, float] = {}
        self.documents: dict[str, dict[str, Any]] = {}
        self.population = seeded_population()
        self.token_requests = self.sync_calls = self.lookups = self.duplicates = 0
        self.seen_refs: set[str] = set()

    def reset(self) -> None:
        self.expires_in = 3600
        self.tokens.clear()
        self.documents.clear()
        self.token_requests = self.sync_calls = self.lookups = self.duplicates = 0
        self.seen_refs.clear()

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/_sandbox/expire-tokens", self._expire)
        app.router.add_post("/_sandbox/config", self._config)
        app.router.add_get("/_sandbox/stats", self._stats)
        app.router.add_get("/_sandbox/documents/{code}", self._document)
        app.router.add_get("/_sandbox/citizens", self._citizens)
        return app

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/token", self.token), ("POST", "/Document/SyncDocument", self.sync),
                ("POST", "/csdlqgdc/v1/citizens/lookup", self.lookup)]

    def _authorised(self, request: web.Request) -> bool:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        expiry = self.tokens.get(token)
        return scheme.lower() == "bearer" and expiry is not None and expiry > time.time()

    async def token(self, request: web.Request) -> web.Response:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        self.receive(None, {"path": "/token"})
        self.token_requests += 1
        if form.get("grant_type") != "client_credentials":
            return answer(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return answer(401, {"error": "invalid_client"})
        token = secrets.token_hex(16)
        self.tokens[token] = time.time() + self.expires_in
        return answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in,
                            "scope": "default"})

    async def sync(self, request: web.Request) -> web.Response:
        reference = request.headers.get("x-dvci-reference")
        self.receive(reference, {"path": "/Document/SyncDocument"})
        if not self._authorised(request):
            return answer(401, {"status": "401", "message": "Invalid Credentials"})
        self.sync_calls += 1
        try:
            doc = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return answer(400, {"status": "400", "message": "Dữ liệu không phải JSON"})
        problem = self._invalid(doc)
        if problem:
            return answer(400, {"status": "400", "message": problem})
        if reference and reference in self.seen_refs:
            self.duplicates += 1
            return answer(200, {"status": "200", "message": "OK (duplicate)"})
        if reference:
            self.seen_refs.add(reference)
        version = request.headers.get("x-dvci-version")
        rec = self.documents.setdefault(doc["DocCode"], {"document": None, "history": []})
        rec["document"] = doc
        rec["history"].append({"version": int(version) if version and version.isdigit() else None,
                               "Status": doc["Status"], "at": time.time()})
        return answer(200, {"status": "200", "message": "OK"})

    @staticmethod
    def _invalid(doc: Any) -> str | None:
        if not isinstance(doc, dict):
            return "Dữ liệu phải là đối tượng"
        for f in ("DocCode", "DocTypeCode", "DocTypeName", "CitizenName", "ProcessingOrganName"):
            if not doc.get(f):
                return f"Thiếu trường {f}"
        for f in ("DateReceived", "DateAppointed", "SuccessDate", "ReturnedDate", "FinishedDate"):
            if f in doc and not _LGSP_DATE.match(str(doc[f])):
                return f"{f} sai định dạng yyyy-MM-ddTHH:mm:ss.SSS+0700"
        if doc.get("ApplicantsType") not in (1, 2, 3, 4):
            return "ApplicantsType phải là 1-4"
        if doc.get("Status") not in (1, 2):
            return "Status phải là 1 hoặc 2"
        return None

    async def lookup(self, request: web.Request) -> web.Response:
        self.receive(None, {"path": "/csdlqgdc/v1/citizens/lookup"})
        if not self._authorised(request):
            return answer(401, {"status": "401", "message": "Invalid Credentials"})
        self.lookups += 1
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return answer(400, {"status": "400", "message": "Dữ liệu không phải JSON"})
        cccd = str(body.get("SoDinhDanh", ""))
        if not re.fullmatch(r"\d{12}", cccd) or not body.get("MaYeuCau"):
            return answer(400, {"status": "400", "message": "SoDinhDanh (12 số) và MaYeuCau là bắt buộc"})
        person = self.population.get(cccd)
        if person is None:
            return answer(404, {"status": "404", "message": "Không tìm thấy công dân"})
        return answer(200, {"status": "200", "data": person})

    # -- control ----------------------------------------------------------------------------------
    async def _expire(self, request: web.Request) -> web.Response:
        n = len(self.tokens)
        self.tokens.clear()
        return web.json_response({"expired": n})

    async def _config(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.expires_in = int(body.get("expires_in", self.expires_in))
        return web.json_response({"expires_in": self.expires_in})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"token_requests": self.token_requests, "sync_calls": self.sync_calls,
                                  "lookups": self.lookups, "duplicates": self.duplicates,
                                  "documents": len(self.documents)})

    async def _document(self, request: web.Request) -> web.Response:
        rec = self.documents.get(request.match_info["code"])
        if rec is None:
            return web.json_response({"title": "unknown document", "status": 404}, status=404,
                                     content_type="application/problem+json")
        return web.json_response(rec)

    async def _citizens(self, request: web.Request) -> web.Response:
        n = int(request.query.get("n", "5"))
        return web.json_response({"citizens": list(self.population.values())[:n]})
