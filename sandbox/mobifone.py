"""MobiFone SMS brandname simulator. No public spec exists; this REST/JSON shape is ASSUMED (see
sandbox/README.md):

    POST /api/v1/messages  Authorization: Bearer <token>
         {"client_ref", "brandname", "to": "84...", "text", "encoding": "gsm7"|"ucs2"}
      -> 200 {"code": "00", "message_id", "duplicate": bool}
      -> 400 {"code": "10"|"11"|"12"|"13", "message"}   (malformed, invalid recipient, content, too long)
      -> 401 {"code": "01", "message"}
    GET  /api/v1/messages/{client_ref} -> 200 {"message_id", "status"} | 404 {"code": "404"}
"""

from __future__ import annotations

import re
import time

import orjson
from aiohttp import web

from sandbox.base import Handler, Simulator

_NUMBER = re.compile(r"^84\d{9}$")


def answer(http_status: int, **body: object) -> web.Response:
    return web.Response(status=http_status, body=orjson.dumps(body), content_type="application/json")


class MobifoneSimulator(Simulator):
    name = "mobifone"

    def __init__(self, *, token: str = "sandbox-token", max_chars: int = 612, **kw):
        super().__init__(**kw)
        self.token, self.max_chars = token, max_chars

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/api/v1/messages", self.send), ("GET", "/api/v1/messages/{ref}", self.status)]

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    async def send(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            ref = str(body["client_ref"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.receive(None, {"error": "malformed"})
            return answer(400, code="10", message="malformed request")
        self.receive(ref, {"fields": {k: v for k, v in body.items()}})
        if not self._authorised(request):
            return answer(401, code="01", message="invalid token")
        if not _NUMBER.match(str(body.get("to", ""))):
            return answer(400, code="11", message="invalid recipient")
        text = str(body.get("text", ""))
        if not text:
            return answer(400, code="12", message="empty content")
        if len(text) > self.max_chars:
            return answer(400, code="13", message="content too long")
        msg, duplicate = self.accept(ref, {"to": body["to"], "brandname": body.get("brandname"), "content": text,
                                           "unicode": body.get("encoding") == "ucs2"})
        return answer(200, code="00", message_id=msg["message_id"], duplicate=duplicate)

    def receipt_payload(self, reference, message, status, carrier, part, parts):  # type: ignore[no-untyped-def]
        """MobiFone push receipt (assumed shape): per part for multipart messages."""
        return {"message_id": message["message_id"], "client_ref": reference, "status": status,
                "carrier": carrier or "", "part": part, "parts": parts,
                "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    async def status(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return answer(401, code="01", message="invalid token")
        msg = self.messages.get(request.match_info["ref"])
        if msg is None:
            return answer(404, code="404", message="unknown client_ref")
        return answer(200, message_id=msg["message_id"], status="sent")
