"""Viettel SMS brandname simulator: the CcApi SOAP service (`wsCpMt`), docs/providers.md.

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


def registered_templates() -> dict[str, list[str]]:
    import re as _re

    from shared.integrations.sms.content import brandnames

    out: dict[str, list[str]] = {}
    for name, templates in brandnames().templates.items():
        if templates:
            out[name] = ["".join(".+?" if i % 2 else _re.escape(part)
                                 for i, part in enumerate(_re.split(r"\{([a-z_][a-z0-9_]*)\}", t.text)))
                         for t in templates.values()]
    return out


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


def result_many(rows: list[tuple[str, str, str]]) -> web.Response:
    inner = "".join(f"<return><details>{escape(d)}</details><msgId>{escape(i)}</msgId>"
                    f"<receiver>{escape(r)}</receiver></return>" for i, r, d in rows)
    return web.Response(text=soap_response("wsCpMt4", inner), content_type="text/xml", charset="utf-8")


class ViettelSimulator(Simulator):
    name = "viettel"
    pull_receipts = True  # no callback: failures are pulled with getFailSub

    def __init__(self, *, user: str = "sandbox", password: str = "sandbox",
                 templates: dict[str, list[str]] | None = None, **kw):
        super().__init__(**kw)
        self.user, self.password = user, password
        # brandname -> registered template patterns (regex); brandnames absent here send free text. By
        # default, what the project registered (shared/integrations/sms/brandnames.yaml).
        self.templates = templates if templates is not None else registered_templates()

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
        if call is not None and call.tag == f"{{{NS}}}wsCpMt4":
            return self.ws_cp_mt4(call)
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

    def ws_cp_mt4(self, call: ET.Element) -> web.Response:
        """wsCpMt4(user, password, CPCode, requestID, serviceID, commandCode, contentType, msg: MsgRequest[])
        -> one ResultMultiReceiver{details, msgId, receiver} per message; each msgId de-duplicated."""
        fields = {c.tag: (c.text or "") for c in call if c.tag != "msg"}
        msgs = [{m.tag: (m.text or "") for m in msg} for msg in call.findall("msg")]
        for m in msgs:
            self.receive(m.get("msgId"), {"operation": "wsCpMt4", "call": fields.get("requestID"),
                                          "fields": {"receiver": m.get("receiver"), "message": m.get("message")}})
        if fields.get("user") != self.user or fields.get("password") != self.password:
            return result_many([(m.get("msgId", ""), m.get("receiver", ""), "Authenticate: fail") for m in msgs])
        if not msgs or any(k not in m for m in msgs for k in ("msgId", "receiver", "message")):
            return soap_fault("Missing msg fields (msgId, receiver, message)")
        patterns = self.templates.get(fields.get("serviceID", ""))
        out = []
        for m in msgs:
            if not _RECEIVER.match(m["receiver"]):
                out.append((m["msgId"], m["receiver"], "Check receiver: RECEIVER_INVALID"))
            elif len(m["message"]) > 480:
                out.append((m["msgId"], m["receiver"], "Check content: CONTENT_TOO_LONG"))
            elif patterns is not None and not any(re.fullmatch(p, m["message"], re.S) for p in patterns):
                out.append((m["msgId"], m["receiver"], "Check template: CONTENT_NOT_MATCH_TEMPLATE"))
            else:
                self.accept(m["msgId"], {"to": m["receiver"], "brandname": fields.get("serviceID"),
                                         "content": m["message"], "unicode": fields.get("contentType") == "1"})
                out.append((m["msgId"], m["receiver"], "OK"))
        return result_many(out)

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
