"""Viettel SMS brandname over its SOAP API (CcApi `wsCpMt`, docs/providers.md). Reference: `RequestID`."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, unescape

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.integrations import transport
from shared.integrations.registry import ProviderSpec, sandbox_url
from shared.integrations.sms import FailureReason, ProviderReceipt, SmsMessage
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable


class ViettelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_SMS_VIETTEL_", extra="ignore")

    url: str = Field(default_factory=lambda: sandbox_url("/viettel/bulkapi"))
    user: str = "sandbox"
    password: SecretStr = SecretStr("sandbox")
    cpcode: str = "DVC"
    timeout_s: float = 3.0
    delivered_after_s: float = Field(600, description="Viettel reports only failures: a message with no failure "
                                                      "reported this long after acceptance counts as delivered")


PROVIDER = ProviderSpec("sms", "viettel", client="shared.integrations.sms.viettel:ViettelSms",
                        settings="shared.integrations.sms.viettel:ViettelSettings",
                        simulator="sandbox.viettel:ViettelSimulator", receipts="pull")


NS = "http://impl.bulkSms.ws/"
_RESULT = re.compile(rb"<result>\s*(-?\d+)\s*</result>")
_MESSAGE = re.compile(rb"<message>(.*?)</message>", re.S)
_FAULT = re.compile(rb"<faultstring>(.*?)</faultstring>", re.S)


def envelope(operation: str, fields: list[tuple[str, str]]) -> bytes:
    """A SOAP 1.1 envelope calling `operation` with its (unqualified) parameters, XML-escaped."""
    body = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:impl="{NS}"><soapenv:Header/><soapenv:Body>'
        f"<impl:{operation}>{body}</impl:{operation}></soapenv:Body></soapenv:Envelope>"
    ).encode()


def classify_rejection(message: str) -> str:
    """Map a `result=0` message to a failure reason (template mismatch, bad receiver...)."""
    upper = message.upper()
    if "TEMPLATE" in upper or "CONTENT" in upper:
        return FailureReason.content_rejected
    if "RECEIVER" in upper or "MSISDN" in upper or "BLACKLIST" in upper:
        return FailureReason.invalid_recipient
    return FailureReason.provider_rejected


class ViettelSms:
    name = "viettel"
    max_chars = 480

    def __init__(self, settings: ViettelSettings | None = None):
        self.settings = settings or ViettelSettings()

    def request_body(self, message: SmsMessage) -> bytes:
        s = self.settings
        return envelope("wsCpMt", [
            ("User", s.user), ("Password", s.password.get_secret_value()), ("CPCode", s.cpcode),
            ("RequestID", message.reference), ("UserID", message.to), ("ReceiverID", message.to),
            ("ServiceID", message.brandname), ("CommandCode", "bulksms"), ("Content", message.text),
            ("ContentType", "1" if message.encoding == "ucs2" else "0"),
        ])

    async def send(self, message: SmsMessage) -> ProviderReceipt:
        status, payload = await transport.request(
            self.name, "POST", self.settings.url, body=self.request_body(message),
            headers={"content-type": "text/xml; charset=utf-8", "soapaction": '""'},
            timeout_s=self.settings.timeout_s)
        fault = _FAULT.search(payload)
        if fault:
            # our request was refused as malformed before any processing: nothing was sent
            raise ProviderUnavailable(self.name, f"SOAP fault: {fault.group(1).decode(errors='replace')[:200]}")
        if status >= 500:
            raise ProviderAmbiguous(self.name, f"HTTP {status}")
        result = _RESULT.search(payload)
        if status != 200 or result is None:
            raise ProviderAmbiguous(self.name, f"unreadable reply (HTTP {status}, {len(payload)} bytes)")
        msg_match = _MESSAGE.search(payload)
        text = msg_match.group(1).decode(errors="replace") if msg_match else ""
        if result.group(1) != b"1":
            if "AUTHEN" in text.upper():  # wrong credentials: no message of ours can pass this provider
                raise ProviderUnavailable(self.name, f"result={result.group(1).decode()}: {text}")
            raise ProviderRejected(self.name, classify_rejection(text), f"result={result.group(1).decode()}: {text}")
        return ProviderReceipt(self.name, message.reference)

    async def send_many(self, messages: list[SmsMessage]) -> dict[str, ProviderReceipt | ProviderRejected]:
        """wsCpMt4: several recipients in one call (one brandname, one encoding); per message a receipt
        or a rejection, keyed by reference. Raises ProviderUnavailable / ProviderAmbiguous for the call."""
        s, first = self.settings, messages[0]
        inner = "".join(f"<msg><msgId>{escape(m.reference)}</msgId><receiver>{m.to}</receiver>"
                        f"<message>{escape(m.text)}</message></msg>" for m in messages)
        head = envelope("wsCpMt4", [
            ("user", s.user), ("password", s.password.get_secret_value()), ("CPCode", s.cpcode),
            ("requestID", first.reference), ("serviceID", first.brandname), ("commandCode", "bulksms"),
            ("contentType", "1" if first.encoding == "ucs2" else "0")])
        body = head.replace(b"</impl:wsCpMt4>", inner.encode() + b"</impl:wsCpMt4>")
        status, payload = await transport.request(
            self.name, "POST", s.url, body=body, headers={"content-type": "text/xml; charset=utf-8"},
            timeout_s=max(s.timeout_s, 10.0))
        fault = _FAULT.search(payload)
        if fault:
            raise ProviderUnavailable(self.name, f"SOAP fault: {fault.group(1).decode(errors='replace')[:200]}")
        rows = re.findall(rb"<return><details>(.*?)</details><msgId>(.*?)</msgId><receiver>.*?</receiver></return>",
                          payload, re.S)
        if status != 200 or not rows:
            raise ProviderAmbiguous(self.name, f"unreadable wsCpMt4 reply (HTTP {status})")
        out: dict[str, ProviderReceipt | ProviderRejected] = {}
        for details, msg_id in rows:
            text, ref = unescape(details.decode(errors="replace")), unescape(msg_id.decode(errors="replace"))
            if text.upper() == "OK":
                out[ref] = ProviderReceipt(self.name, ref)
            elif "AUTHEN" in text.upper():
                raise ProviderUnavailable(self.name, text)
            else:
                out[ref] = ProviderRejected(self.name, classify_rejection(text), text)
        missing = {m.reference for m in messages} - set(out)
        if missing:
            raise ProviderAmbiguous(self.name, f"wsCpMt4 reply lacks {len(missing)} message(s)")
        return out

    async def fail_subs(self, day: str, page: int = 1, page_size: int = 500) -> tuple[int, list[tuple[str, str]]]:
        """getFailSub for `day` (YYYYMMDD... as the CMS expects): (total, [(receiver, message)])."""
        s = self.settings
        body = envelope("getFailSub", [("username", s.user), ("password", s.password.get_secret_value()),
                                       ("cpCode", s.cpcode), ("alias", ""), ("date", day),
                                       ("pageNumber", str(page)), ("pageSize", str(page_size))])
        status, payload = await transport.request(self.name, "POST", s.url, body=body,
                                                  headers={"content-type": "text/xml; charset=utf-8"},
                                                  timeout_s=max(5.0, s.timeout_s))
        code = re.search(rb"<errCode>(-?\d+)</errCode>", payload)
        if status != 200 or code is None or code.group(1) != b"0":
            raise ProviderUnavailable(self.name, f"getFailSub failed (HTTP {status})")
        total = re.search(rb"<total>(\d+)</total>", payload)
        subs = [(unescape(r.decode(errors="replace")), unescape(m.decode(errors="replace"))) for m, r in
                re.findall(rb"<failSub><message>(.*?)</message><receiver>(.*?)</receiver></failSub>", payload, re.S)]
        return (int(total.group(1)) if total else len(subs)), subs

    async def status(self, message: SmsMessage) -> ProviderReceipt | None:
        raise ProviderAmbiguous(self.name, "wsCpMt has no status query; re-send with the same RequestID")
