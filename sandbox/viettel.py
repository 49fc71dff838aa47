"""Viettel SMS brandname simulator: the CcApi SOAP service (`wsCpMt`), providers.md §1.1.

Replies as Viettel does: `<return><message>Insert MT_QUEUE: OK</message><result>1</result></return>`;
`result=0` with a message for refusals (template mismatch, bad receiver, wrong credentials, too long);
a SOAP Fault (HTTP 500) for a request that is not a well-formed wsCpMt call. De-duplicates `RequestID`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from aiohttp import web

from sandbox.base import Handler, Simulator

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS = "http://impl.bulkSms.ws/"
FIELDS = ("User", "Password", "CPCode", "RequestID", "UserID", "ReceiverID", "ServiceID", "CommandCode",
          "Content", "ContentType")
_RECEIVER = re.compile(r"^84\d{9}$")


def soap_response(operation: str, inner: str) -> str:
    return (f'<S:Envelope xmlns:S="{SOAP_ENV}"><S:Body><ns2:{operation}Response xmlns:ns2="{NS}">'
            f"{inner}</ns2:{operation}Response></S:Body></S:Envelope>")


def soap_fault(text: str) -> web.Response:
    body = (f'<S:Envelope xmlns:S="{SOAP_ENV}"><S:Body><S:Fault><faultcode>S:Client</faultcode>'
            f"<faultstring>{escape(text)}</faultstring></S:Fault></S:Body></S:Envelope>")
    return web.Response(status=500, text=body, content_type="text/xml", charset="utf-8")


def result(message: str, code: int) -> web.Response:
    inner = f"<return><message>{escape(message)}</message><result>{code}</result></return>"
    return web.Response(text=soap_response("wsCpMt", inner), content_type="text/xml", charset="utf-8")


class ViettelSimulator(Simulator):
    name = "viettel"
    pull_receipts = True  # no callback: failures are pulled with getFailSub

    def __init__(self, *, user: str = "sandbox", password: str = "sandbox",
                 templates: dict[str, list[str]] | None = None, **kw):
        super().__init__(**kw)
        self.user, self.password = user, password
        # brandname -> registered template patterns (regex); brandnames absent here send free text
        self.templates = templates if templates is not None else {
            "DVCCSKH": [r"Ho so .+ da duoc tiep nhan\..*", r"Ma OTP cua ban la \d{4,8}.*"]}

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/bulkapi", self.handle), ("POST", "/", self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            root = ET.fromstring(raw)
        except ET.ParseError as exc:
            self.receive(None, {"operation": None, "error": "malformed XML"})
            return soap_fault(f"Unmarshalling Error: {exc}")
        body = root.find(f"{{{SOAP_ENV}}}Body")
        call = body[0] if body is not None and len(body) else None
        if call is not None and call.tag == f"{{{NS}}}getFailSub":
            return self.get_fail_sub({child.tag: (child.text or "") for child in call})
        if call is None or call.tag != f"{{{NS}}}wsCpMt":
            self.receive(None, {"operation": call.tag if call is not None else None, "error": "unknown op"})
            return soap_fault("Cannot find dispatch method for the request")
        fields = {child.tag: (child.text or "") for child in call}
        ref = fields.get("RequestID")
        self.receive(ref, {"operation": "wsCpMt", "fields": {k: v for k, v in fields.items() if k != "Password"}})
        missing = [f for f in FIELDS if f not in fields]
        if missing:
            return soap_fault(f"Missing parameter(s): {', '.join(missing)}")
        if fields["User"] != self.user or fields["Password"] != self.password:
            return result("Authenticate: fail", 0)
        if not _RECEIVER.match(fields["ReceiverID"]):
            return result("Check receiver: RECEIVER_INVALID", 0)
        if fields["ContentType"] not in ("0", "1"):
            return result("Check content type: CONTENT_TYPE_INVALID", 0)
        content = fields["Content"]
        if len(content) > 480:
            return result("Check content: CONTENT_TOO_LONG", 0)
        patterns = self.templates.get(fields["ServiceID"])
        if patterns is not None and not any(re.fullmatch(p, content, re.S) for p in patterns):
            return result("Check template: CONTENT_NOT_MATCH_TEMPLATE", 0)
        self.accept(ref or "", {"to": fields["ReceiverID"], "brandname": fields["ServiceID"],
                                "content": content, "unicode": fields["ContentType"] == "1"})
        return result("Insert MT_QUEUE: OK", 1)

    def get_fail_sub(self, fields: dict[str, str]) -> web.Response:
        """getFailSub(username, password, cpCode, alias, date, pageNumber, pageSize) -> failed subscribers
        {message, receiver} of that day (the public shape names only those two fields)."""
        if fields.get("username") != self.user or fields.get("password") != self.password:
            inner = "<return><errCode>1</errCode><errDesc>Authenticate: fail</errDesc></return>"
            return web.Response(text=soap_response("getFailSub", inner), content_type="text/xml", charset="utf-8")
        page, size = int(fields.get("pageNumber") or 1), int(fields.get("pageSize") or 100)
        failed = [r for r in self.receipts_sent if r["status"] != "delivered"]
        chunk = failed[(page - 1) * size: page * size]
        subs = "".join(f"<failSub><message>{escape(self.messages[r['reference']]['content'])}</message>"
                       f"<receiver>{self.messages[r['reference']]['to']}</receiver></failSub>" for r in chunk)
        inner = f"<return><errCode>0</errCode><total>{len(failed)}</total>{subs}</return>"
        return web.Response(text=soap_response("getFailSub", inner), content_type="text/xml", charset="utf-8")
