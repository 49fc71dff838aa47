"""VNPT / VinaPhone SMS brandname simulator: the JSON `RQST` -> `RPLY` API, docs/providers.md.

ERROR codes (assumed; the real table is not public): "0" success, "1" authentication failed,
"2" invalid MOBILELIST, "3" unknown LABELID/CONTRACTID, "4" malformed request, "7" content does not
match TEMPLATEID, "99" system busy. De-duplicates `REQID`.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from sandbox.base import Handler, Simulator

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")

_NUMBER = re.compile(r"^84\d{9}$")
REQUIRED = ("name", "REQID", "LABELID", "TEMPLATEID", "PARAMS", "MOBILELIST", "APIUSER", "APIPASS", "DATACODING")


def reply(code: str, desc: str, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"RPLY": {"name": "send_sms_list", "ERROR": code,
                                                                    "ERROR_DESC": desc}}),
                        content_type="application/json")


class VnptSimulator(Simulator):
    name = "vnpt"

    def __init__(self, *, user: str = "sandbox", password: str = "sandbox", **kw):
        super().__init__(**kw)
        self.user, self.password = user, password

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/api", self.handle), ("POST", "/", self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        try:
            rqst = orjson.loads(await request.read())["RQST"]
            if not isinstance(rqst, dict):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.receive(None, {"error": "malformed"})
            return reply("4", "malformed request: expected {\"RQST\": {...}}", 400)
        ref = str(rqst.get("REQID") or "")
        self.receive(ref or None, {"fields": {k: v for k, v in rqst.items() if k != "APIPASS"}})
        missing = [f for f in REQUIRED if f not in rqst]
        if missing or rqst.get("name") != "send_sms_list":
            return reply("4", f"malformed request: missing {', '.join(missing) or 'name=send_sms_list'}", 400)
        if rqst["APIUSER"] != self.user or rqst["APIPASS"] != self.password:
            return reply("1", "authentication failed")
        if not _NUMBER.match(str(rqst["MOBILELIST"])):
            return reply("2", "invalid MOBILELIST")
        params = rqst["PARAMS"]
        if not isinstance(params, list) or not params:
            return reply("7", "PARAMS do not match TEMPLATEID")
        content = " ".join(str(p.get("CONTENT", "")) for p in params if isinstance(p, dict))
        self.accept(ref, {"to": rqst["MOBILELIST"], "brandname": str(rqst["LABELID"]), "content": content,
                          "unicode": str(rqst["DATACODING"]) == "8"})
        return reply("0", "success")

    def receipt_payload(self, reference, message, status, carrier, part, parts):  # type: ignore[no-untyped-def]
        """VNPT push receipt (assumed shape): {"REQID", "MOBILE", "STATUS", "TELCO", "DONE_TIME"}."""
        code = {"delivered": "DELIVRD", "failed": "UNDELIV", "expired": "EXPIRED"}.get(status, "UNKNOWN")
        return {"REQID": reference, "MOBILE": message["to"], "STATUS": code, "TELCO": carrier or "",
                "DONE_TIME": datetime.now(VIETNAM).strftime("%Y-%m-%d %H:%M:%S")}  # gateway local time
