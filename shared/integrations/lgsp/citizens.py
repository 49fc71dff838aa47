"""Citizen lookup in the national population database (through LGSP), with the CCCD checks before any
call, an encrypted cache that answers only when the live source is unavailable, and an audit record for
every lookup (who, purpose, keyed hash of the id, outcome). Citizen data never reaches a log line.

CCCD (12 digits): 1-3 province of birth, 4 sex and century (0/1 1900s male/female, 2/3 2000s, 4/5 2100s,
6/7 2200s, 8/9 1800s), 5-6 year of birth, 7-12 a serial.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import orjson

from shared.integrations.lgsp import PopulationSource, local_iso, mapping
from shared.integrations.lgsp.audit import audit
from shared.integrations.lgsp.crypto import Sealer
from shared.integrations.lgsp.gate import Gate, GateClosed
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable
from shared.storage.redis import Keys

_CENTURY = {0: 1900, 1: 1900, 2: 2000, 3: 2000, 4: 2100, 5: 2100, 6: 2200, 7: 2200, 8: 1800, 9: 1800}
_DIGITS = re.compile(r"^\d{12}$")


class CitizenIdError(Exception):
    def __init__(self, reason: Literal["invalid_id", "mismatch"], detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True, slots=True)
class CccdInfo:
    province: str
    sex: Literal["male", "female"]
    birth_year: int


def check_cccd(citizen_id: str, birth_date: str | None = None, *, today: date | None = None) -> CccdInfo:
    """The checks a CCCD must pass before any call; `birth_date` (YYYY-MM-DD) must agree with it."""
    if not _DIGITS.match(citizen_id):
        raise CitizenIdError("invalid_id", "a CCCD is 12 digits")
    province = citizen_id[:3]
    if province not in set(mapping("provinces")["codes"]):
        raise CitizenIdError("invalid_id", "the first three digits are not a province code")
    code = int(citizen_id[3])
    year = _CENTURY[code] + int(citizen_id[4:6])
    if year > (today or date.today()).year:
        raise CitizenIdError("invalid_id", "the year of birth it encodes is in the future")
    if birth_date:
        try:
            born = date.fromisoformat(birth_date)
        except ValueError as exc:
            raise CitizenIdError("mismatch", "birth_date is not a date (YYYY-MM-DD)") from exc
        if born.year != year:
            raise CitizenIdError("mismatch", "birth_date contradicts the year of birth in the CCCD")
    return CccdInfo(province, "male" if code % 2 == 0 else "female", year)


def _same_name(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return " ".join(unicodedata.normalize("NFC", s).casefold().split())
    return norm(a) == norm(b)


@dataclass(slots=True)
class Lookup:
    outcome: Literal["found", "not_found", "failed"]
    record: dict[str, Any] | None = None
    source: Literal["live", "cache"] | None = None
    as_of: str | None = None
    reason: str | None = None
    detail: str | None = None


class CitizenCache:
    """Live answers, sealed (AES-256-GCM, bound to their key), under the keyed hash of the id."""

    def __init__(self, redis, keys: Keys, sealer: Sealer, ttl_s: int):  # type: ignore[no-untyped-def]
        self.redis, self.keys, self.sealer, self.ttl_s = redis, keys, sealer, ttl_s

    def key(self, id_hash: str) -> str:
        return self.keys.key("lgsp", "citizen", id_hash)

    async def put(self, id_hash: str, record: dict[str, Any], at: float) -> None:
        key = self.key(id_hash)
        await self.redis.set(key, self.sealer.seal(orjson.dumps({"r": record, "at": at}), key), ex=self.ttl_s)

    async def get(self, id_hash: str) -> tuple[dict[str, Any], float] | None:
        key = self.key(id_hash)
        blob = await self.redis.get(key)
        if blob is None:
            return None
        try:
            obj = orjson.loads(self.sealer.open(blob, key))
        except Exception:
            return None
        return obj["r"], float(obj["at"])

    async def forget(self, id_hash: str) -> None:
        await self.redis.delete(self.key(id_hash))


class CitizenLookup:
    def __init__(self, redis, keys: Keys, source: PopulationSource, gate: Gate, cache: CitizenCache,  # type: ignore[no-untyped-def]
                 sealer: Sealer, *, max_wait_ms: float = 1000):
        self.redis, self.keys, self.source, self.gate = redis, keys, source, gate
        self.cache, self.sealer, self.max_wait_ms = cache, sealer, max_wait_ms

    async def lookup(self, citizen_id: str, *, purpose: str, requested_by: str, full_name: str | None = None,
                     birth_date: str | None = None, dossier_id: str | None = None, request_id: str = "") -> Lookup:
        id_hash = self.sealer.id_hash(citizen_id)
        result = await self._lookup(citizen_id, id_hash, full_name, birth_date, request_id)
        await audit(self.redis, self.keys, "citizen.lookup", who=requested_by, purpose=purpose[:200],
                    id_hash=id_hash, dossier=dossier_id, outcome=result.reason or result.outcome,
                    source=result.source, request=request_id)
        return result

    async def _lookup(self, citizen_id: str, id_hash: str, full_name: str | None, birth_date: str | None,
                      request_id: str) -> Lookup:
        try:
            check_cccd(citizen_id, birth_date)
        except CitizenIdError as exc:
            return Lookup("failed", reason=exc.reason, detail=exc.detail)
        try:
            await self.gate.take(self.max_wait_ms)
            try:
                record = await self.source.lookup(citizen_id, full_name, birth_date, request_id)
            except (ProviderUnavailable, ProviderAmbiguous):
                await self.gate.report(False)
                raise
            await self.gate.report(True)
        except (GateClosed, ProviderUnavailable, ProviderAmbiguous, ProviderRejected) as exc:
            cached = await self.cache.get(id_hash)
            if cached is not None:
                mismatch = self._mismatch(cached[0], full_name, birth_date)
                if mismatch:
                    return Lookup("failed", reason="mismatch", detail=mismatch)
                return Lookup("found", cached[0], "cache", local_iso(cached[1]))
            detail = exc.why if isinstance(exc, GateClosed) else exc.detail
            return Lookup("failed", reason="unavailable",
                          detail=f"population database unavailable and no cached answer ({detail[:120]})")
        if record is None:
            await self.cache.forget(id_hash)
            return Lookup("not_found")
        now = time.time()
        await self.cache.put(id_hash, record, now)
        mismatch = self._mismatch(record, full_name, birth_date)
        if mismatch:
            return Lookup("failed", reason="mismatch", detail=mismatch)
        return Lookup("found", record, "live", local_iso(now))

    @staticmethod
    def _mismatch(record: dict[str, Any], full_name: str | None, birth_date: str | None) -> str | None:
        if full_name and not _same_name(full_name, record.get("full_name", "")):
            return "full_name differs from the population record"
        if birth_date and birth_date != record.get("birth_date"):
            return "birth_date differs from the population record"
        return None
