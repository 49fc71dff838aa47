"""Delivery receipts: normalise each provider's report, correlate it to the accepted message (Redis),
de-duplicate, never regress (a `delivered` never turns back into `sent`), aggregate multipart messages,
learn ported numbers, and emit `vn.gov.dvc.sms.delivery.updated` to K_SINK."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib.resources import files
from typing import Literal

import orjson

from shared.observability import metrics
from shared.reliability.statusbook import LIBRARY
from shared.security.crypto import blind_index, open_field
from shared.storage.redis import Keys
from shared.storage.resp import RespClient

Status = Literal["delivered", "failed", "expired", "unknown"]
DELIVERY_UPDATED = "vn.gov.dvc.sms.delivery.updated"
_SCRIPT = LIBRARY + files("shared.integrations.sms").joinpath("receipts.lua").read_text()
# never-regress ranks: a final status is never replaced by an earlier one (failed vs delivered: equal rank,
# the first final status wins)
RANK = {"sent": 0, "unknown": 1, "delivered": 2, "failed": 2, "expired": 2}
_RANK_JSON = orjson.dumps(RANK).decode()
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

    def __post_init__(self) -> None:  # a signed receipt is still bounded: receipts.lua's work grows with parts
        if not 1 <= self.part <= MAX_PARTS or not 0 <= self.parts <= MAX_PARTS or self.part > (self.parts or MAX_PARTS):
            raise ValueError(f"receipt part {self.part} of {self.parts}: at most {MAX_PARTS} parts")


#: the most segments a message has (612 characters of UCS-2 are 10), with room
MAX_PARTS = 16
_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def receipt_id(value: object) -> str:
    """A provider's message id from a receipt payload: a string or an integer, of id characters (ValueError)."""
    if isinstance(value, bool) or not isinstance(value, str | int) or not _ID.fullmatch(str(value)):
        raise ValueError("message id missing or not an id")
    return str(value)


def correlation_key(keys: Keys, provider: str, provider_message_id: str) -> str:
    return keys.key("sms", "dlr", provider, provider_message_id)


def porting_key(keys: Keys) -> str:
    return keys.key("sms", "porting")


def number_field(msisdn: str) -> str:
    """The porting table's field for a number: a keyed blind index (stored with the correlation as `nf`,
    which receipts.lua uses when it learns a port)."""
    return blind_index("sms.number", msisdn, length=24)


def failsub_digest(receiver: str, message: str) -> str:
    """Viettel's getFailSub names (receiver, message): the lookup key of such a report (keyed)."""
    return blind_index("sms.failsub", f"{receiver}\x00{message}")


# correlation fields holding citizen data: encrypted at rest by the pipeline (Correlation.encrypted)
ENCRYPTED_FIELDS = ("to",)


def correlation_fields(to: str, segments: int, carrier: str, event_source: str, event_id: str,
                       dossier_id: str | None) -> dict[str, str]:
    fields = {"to": to, "nf": number_field(to), "segments": str(segments), "carrier": carrier,
              "source": event_source, "id": event_id, "accepted_at": str(time.time())}
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
    undo: tuple[str, str] = ("", "")  # (part status, emitted status) before this receipt: restored on failure


class ReceiptBook:
    def __init__(self, redis: RespClient, keys: Keys):
        self.redis = redis
        self.keys = keys

    async def record(self, r: Receipt) -> Outcome:
        key = correlation_key(self.keys, r.provider, r.provider_message_id)
        res = await self.redis.evalsha(_SCRIPT, [key, porting_key(self.keys)],
                                       [r.status, str(r.part), str(r.parts), r.carrier, str(CORRELATION_TTL_MS),
                                        _RANK_JSON])
        action = res[0].decode()
        if metrics.ENABLED:
            metrics.SMS_RECEIPTS.labels(r.provider, r.status if action == "emit" else action).inc()
        if action != "emit":
            return Outcome(action)
        status, to, carrier, source, event_id, dossier, accepted = (x.decode() for x in res[1:8])
        to = await open_field(to, "to", "corr")
        if metrics.ENABLED and float(accepted):
            metrics.SMS_RECEIPT_DELAY.labels(r.provider).observe(max(0.0, time.time() - float(accepted)))
        return Outcome(action, status, to, carrier, source or None, event_id or None, dossier or None, float(accepted),
                       (res[8].decode(), res[9].decode()))

    async def undo(self, r: Receipt, outcome: Outcome) -> None:
        """Forget an `emit` whose event was not emitted, so the provider's retry of the receipt emits it
        (unless a later receipt has moved the message on meanwhile)."""
        await self.redis.evalsha(_UNDO, [correlation_key(self.keys, r.provider, r.provider_message_id)],
                                 [str(r.part), r.status, str(outcome.status), *outcome.undo])


_UNDO = """
if redis.call('HGET', KEYS[1], 'emitted') ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], 'e:' .. ARGV[1] .. ':' .. ARGV[2])
if ARGV[4] == '' then redis.call('HDEL', KEYS[1], 'p:' .. ARGV[1])
else redis.call('HSET', KEYS[1], 'p:' .. ARGV[1], ARGV[4]) end
if ARGV[5] == '' then redis.call('HDEL', KEYS[1], 'emitted') else redis.call('HSET', KEYS[1], 'emitted', ARGV[5]) end
return 1
"""
