"""Delivery receipts: normalise each provider's report, correlate it to the accepted message (Redis),
de-duplicate, never regress (a `delivered` never turns back into `sent`), aggregate multipart messages,
learn ported numbers, and emit `vn.gov.dvc.sms.delivery.updated` to K_SINK."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Literal

from shared.observability import metrics
from shared.storage.redis import Keys
from shared.storage.resp import RespClient

Status = Literal["delivered", "failed", "expired", "unknown"]
DELIVERY_UPDATED = "vn.gov.dvc.sms.delivery.updated"
_SCRIPT = files("shared.integrations.sms").joinpath("receipts.lua").read_text()
CORRELATION_TTL_MS = 3 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Receipt:
    provider: str
    provider_message_id: str
    status: Status
    carrier: str = ""
    at: str = ""
    part: int = 1
    parts: int = 0  # 0: as many as the message had segments


def correlation_key(keys: Keys, provider: str, provider_message_id: str) -> str:
    return keys.key("sms", "dlr", provider, provider_message_id)


def porting_key(keys: Keys) -> str:
    return keys.key("sms", "porting")


def number_field(msisdn: str) -> str:
    """The porting table's field for a number: a digest (receipts.lua computes the same with sha1hex)."""
    return hashlib.sha1(f"rcpt:{msisdn}".encode()).hexdigest()[:24]


def failsub_digest(receiver: str, message: str) -> str:
    """Viettel's getFailSub names (receiver, message): the lookup key of such a report."""
    return hashlib.sha256(f"{receiver}\x00{message}".encode()).hexdigest()[:32]


def correlation_fields(to: str, segments: int, carrier: str, event_source: str, event_id: str,
                       dossier_id: str | None) -> dict[str, str]:
    fields = {"to": to, "segments": str(segments), "carrier": carrier, "source": event_source, "id": event_id,
              "accepted_at": str(time.time())}
    if dossier_id:
        fields["dossierid"] = dossier_id
    return fields


@dataclass(frozen=True, slots=True)
class Outcome:
    action: str  # emit | duplicate | stale | partial | uncorrelated
    status: str | None = None
    to: str | None = None
    carrier: str | None = None
    event_source: str | None = None
    event_id: str | None = None
    dossier_id: str | None = None
    accepted_at: float = 0.0


class ReceiptBook:
    def __init__(self, redis: RespClient, keys: Keys):
        self.redis = redis
        self.keys = keys

    async def record(self, r: Receipt) -> Outcome:
        key = correlation_key(self.keys, r.provider, r.provider_message_id)
        res = await self.redis.evalsha(_SCRIPT, [key, porting_key(self.keys)],
                                       [r.status, str(r.part), str(r.parts), r.carrier, str(CORRELATION_TTL_MS)])
        action = res[0].decode()
        if metrics.ENABLED:
            metrics.SMS_RECEIPTS.labels(r.provider, r.status if action == "emit" else action).inc()
        if action != "emit":
            return Outcome(action)
        status, to, carrier, source, event_id, dossier, accepted = (x.decode() for x in res[1:8])
        if metrics.ENABLED and float(accepted):
            metrics.SMS_RECEIPT_DELAY.labels(r.provider).observe(max(0.0, time.time() - float(accepted)))
        return Outcome(action, status, to, carrier, source or None, event_id or None, dossier or None, float(accepted))


# -- webhook authentication ------------------------------------------------------------------------------
def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str | None, allow_ips: list[str], header: str | None, body: bytes, client_ip: str | None,
           now: float | None = None, tolerance_s: int = 300) -> str | None:
    """None when the webhook is authentic; else the reason it is refused. Either an HMAC-SHA256 signature
    (`x-dvci-signature: t=<unix>,v1=<hex>` over `t.body`, 5-minute window) or a source IP allow-list."""
    if allow_ips and client_ip:
        addr = ipaddress.ip_address(client_ip)
        if any(addr in ipaddress.ip_network(net, strict=False) for net in allow_ips):
            return None
    if not secret:
        return "no signature secret configured and the caller is not allow-listed"
    if not header:
        return "missing x-dvci-signature"
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return "malformed x-dvci-signature"
    if abs((now or time.time()) - ts) > tolerance_s:
        return "signature timestamp outside the 5-minute window"
    expected = sign(secret, ts, body).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, v) for k, v in parts.items() if k.startswith("v1")):
        return "signature does not match"
    return None


# -- provider payloads -----------------------------------------------------------------------------------
_VNPT_STATUS = {"DELIVRD": "delivered", "UNDELIV": "failed", "REJECTD": "failed", "EXPIRED": "expired"}


def from_vnpt(payload: dict[str, Any]) -> Receipt:
    """VNPT push (assumed shape, sandbox/README.md): {"REQID", "MOBILE", "STATUS", "TELCO", "DONE_TIME"}."""
    return Receipt("vnpt", str(payload["REQID"]), _VNPT_STATUS.get(str(payload.get("STATUS")), "unknown"),  # type: ignore[arg-type]
                   str(payload.get("TELCO") or ""), str(payload.get("DONE_TIME") or ""))


def from_mobifone(payload: dict[str, Any]) -> Receipt:
    """MobiFone push (assumed): {"message_id", "status", "carrier", "part", "parts", "at"}."""
    status = str(payload.get("status", "unknown"))
    return Receipt("mobifone", str(payload["message_id"]),
                   status if status in ("delivered", "failed", "expired") else "unknown",  # type: ignore[arg-type]
                   str(payload.get("carrier") or ""), str(payload.get("at") or ""), int(payload.get("part", 1)),
                   int(payload.get("parts", 0)))
