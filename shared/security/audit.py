"""The audit trail: one fleet-wide hash chain of records, in Redis until sealed to write-once storage.

    await Audit(redis, keys).record(actor=operator(), action="dlq.replay", kind="dlq", subject=letter_id,
                                    outcome="ok", detail={"status": 200, "reason": "..."})

A record is `{seq, at, actor, action, kind, subject, outcome, detail, prev, hash}`: `subject` is a reference
or a keyed hash, never citizen data in clear; `hash` is SHA-256 over the RFC 8785 canonical JSON of every
other field (`prev` included), so each record commits to the whole chain before it.

Appending is compare-and-append: the caller computes the record for the head it read (seq + 1, prev =
head hash) and `chain.lua` appends it only if the head is still that one (else the caller reads the new
head and tries again) — seq and prev are taken atomically with the XADD, and hashing stays in Python.

The hot path never touches the chain: the reliability pipeline keeps appending one flat entry per event
to its kind's stream (`{<kind>}:audit`, in the same Lua call that completes the event, as before);
`absorb()` (run by the `audit-seal` job before sealing) moves those entries into the chain in order, with
a per-stream cursor updated in the same script, so a crash never appends an entry twice.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
import rfc8785

from shared.runtime.times import to_rfc3339
from shared.storage.redis import Keys

GENESIS = "0" * 64
_SCRIPT = files("shared.security").joinpath("chain.lua").read_text()
FIELDS = ("seq", "at", "actor", "action", "kind", "subject", "outcome", "detail", "prev")
_SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def canonical(obj: Any) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme) bytes of `obj`."""
    return bytes(rfc8785.dumps(obj))


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: record.get(k) for k in FIELDS})).hexdigest()


def operator() -> str:
    """Who is acting: the pod's Kubernetes ServiceAccount (system:serviceaccount:<ns>:<name>) when running
    in a pod, else the OS user (`user:<login>`). Never a name typed on the command line."""
    token = _SA_DIR / "token"
    if token.exists():
        try:
            import base64

            payload = token.read_text().split(".")[1]
            claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            if isinstance(claims.get("sub"), str):
                return str(claims["sub"])
        except (OSError, ValueError, IndexError):
            pass
        ns = (_SA_DIR / "namespace").read_text().strip() if (_SA_DIR / "namespace").exists() else "?"
        return f"system:serviceaccount:{ns}:{os.environ.get('DVCI_SERVICE_ACCOUNT', 'default')}"
    return f"user:{getpass.getuser()}"


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass(slots=True)
class AppendConflict(Exception):
    seq: int
    hash: str


class Audit:
    """The chain of one environment: stream `{audit}:chain` (entry id `<seq>-1`, field `r` = the record's
    canonical JSON), head `{audit}:head` {seq, hash}, absorb cursors `{audit}:cursor`, sealed state
    `{audit}:sealed` {seq, hash, manifest}."""

    def __init__(self, redis: Any, keys: Keys, *, max_tries: int = 100):
        self.redis = redis
        self.keys = keys
        self.chain = keys.key("audit", "chain")
        self.head_key = keys.key("audit", "head")
        self.cursor_key = keys.key("audit", "cursor")
        self.sealed_key = keys.key("audit", "sealed")
        self.max_tries = max_tries
        self._script = redis.register_script(_SCRIPT)

    # -- appending -----------------------------------------------------------------------------
    async def head(self) -> tuple[int, str]:
        seq, h = await self.redis.hmget(self.head_key, ["seq", "hash"])
        if seq is None:
            sealed_seq, sealed_hash = await self.redis.hmget(self.sealed_key, ["seq", "hash"])
            if sealed_seq is not None:  # the live chain was lost: continue from what was sealed
                return int(sealed_seq), _text(sealed_hash)
            return 0, GENESIS
        return int(seq), _text(h)

    @staticmethod
    def build(seq: int, prev: str, *, actor: str, action: str, kind: str, subject: str = "", outcome: str = "ok",
              detail: dict[str, Any] | None = None, at: str | None = None) -> dict[str, Any]:
        rec: dict[str, Any] = {"seq": seq, "at": at or to_rfc3339(time.time()), "actor": actor[:200],
                               "action": action[:100], "kind": kind[:50], "subject": subject[:200],
                               "outcome": outcome[:100], "detail": _bounded(detail or {}), "prev": prev}
        rec["hash"] = record_hash(rec)
        return rec

    async def _append(self, make: Any, cursor: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """`make(seq, prev) -> [records]`; appended atomically if the head did not move (retried if it did)."""
        seq, prev = await self.head()
        for _ in range(self.max_tries):
            records = make(seq, prev)
            if not records:
                return []
            spec: dict[str, Any] = {"records": [[r["seq"], canonical(r).decode(), r["hash"]] for r in records]}
            if cursor:
                spec["cursor"] = {"f": cursor[0], "id": cursor[1]}
            res = await self._script(keys=[self.chain, self.head_key, self.cursor_key],
                                     args=[str(seq), prev, orjson.dumps(spec)])
            status = _text(res[0])
            if status == "ok":
                return list(records)
            if status == "stale_cursor":
                return []
            seq, prev = int(_text(res[1])), _text(res[2])
        raise RuntimeError(f"audit chain busy: no append after {self.max_tries} tries")

    async def record(self, *, actor: str, action: str, kind: str, subject: str = "", outcome: str = "ok",
                     detail: dict[str, Any] | None = None) -> dict[str, Any]:
        """Append one record to the chain and return it (with its seq and hash)."""
        def make(seq: int, prev: str) -> list[dict[str, Any]]:
            return [self.build(seq + 1, prev, actor=actor, action=action, kind=kind, subject=subject,
                               outcome=outcome, detail=detail)]

        return (await self._append(make))[0]

    # -- absorbing the per-kind hot-path streams ------------------------------------------------
    async def sources(self) -> list[str]:
        """Every `{<kind>}:audit` stream of this environment (the pipeline's and the kinds' own)."""
        out = []
        async for raw in self.redis.scan_iter(match=self.keys.prefix + "{*}:audit", count=500):
            key = _text(raw)
            if not key.startswith(self.keys.prefix + "{audit}") and _text(await self.redis.type(key)) == "stream":
                out.append(key)
        return sorted(out)

    async def absorb(self, batch: int = 500) -> int:
        """Move entries of the per-kind streams into the chain (oldest first per stream); returns how many."""
        total = 0
        for source in await self.sources():
            kind = source[len(self.keys.prefix) + 1:].split("}", 1)[0]
            cursor = await self.redis.hget(self.cursor_key, source)
            if cursor:  # chained before a crash kept them from being deleted
                done = await self.redis.xrange(source, min="-", max=_text(cursor), count=10_000)
                if done:
                    await self.redis.xdel(source, *[_text(r[0]) for r in done])
            while True:
                cursor = await self.redis.hget(self.cursor_key, source)
                start = "(" + _text(cursor) if cursor else "-"
                rows = await self.redis.xrange(source, min=start, max="+", count=batch)
                if not rows:
                    break
                last_id = _text(rows[-1][0])

                def make(seq: int, prev: str, rows: list[Any] = rows, kind: str = kind) -> list[dict[str, Any]]:
                    out: list[dict[str, Any]] = []
                    for entry_id, fields in rows:
                        rec = from_entry(kind, _text(entry_id), {_text(k): _text(v) for k, v in fields.items()},
                                         seq + len(out) + 1, prev)
                        out.append(rec)
                        prev = rec["hash"]
                    return out

                appended = await self._append(make, cursor=(source, last_id))
                total += len(appended)
                # absorbed: the buffer entries are not needed any more (the chain holds them)
                await self.redis.xdel(source, *[_text(r[0]) for r in rows])
                if len(rows) < batch:
                    break
        return total

    # -- reading -------------------------------------------------------------------------------
    async def live(self, after_seq: int = 0) -> list[dict[str, Any]]:
        """Records still in Redis (not yet trimmed), in stream order, from `after_seq` + 1."""
        out: list[dict[str, Any]] = []
        start = f"{after_seq + 1}-0"
        while True:
            rows = await self.redis.xrange(self.chain, min=start, max="+", count=1000)
            for entry_id, fields in rows:
                raw = fields.get(b"r", fields.get("r"))
                try:
                    rec = orjson.loads(raw)
                except (orjson.JSONDecodeError, TypeError):
                    rec = {"seq": None, "unreadable": _text(entry_id)}
                rec["_id"] = _text(entry_id)
                out.append(rec)
            if len(rows) < 1000:
                return out
            start = "(" + _text(rows[-1][0])


_SKIP = frozenset(("at", "kind", "action", "outcome", "actor", "by", "subject"))


def from_entry(kind: str, entry_id: str, f: dict[str, str], seq: int, prev: str) -> dict[str, Any]:
    """A pipeline / kind stream entry as a chain record (its stream id kept as `detail.src`)."""
    at_raw = f.get("at") or entry_id.split("-", 1)[0]
    try:
        at = to_rfc3339(float(at_raw))
    except ValueError:
        at = at_raw
    subject = f.get("subject") or f.get("ref") or f.get("letter") or f.get("dossier_id") or f.get("dossierid") or ""
    detail = {k: v for k, v in f.items() if k not in _SKIP}
    detail["src"] = entry_id
    actor = f.get("actor") or f.get("by") or f"service:{f.get('kind') or kind}"
    return Audit.build(seq, prev, actor=actor, action=f.get("action") or "provider.call", kind=f.get("kind") or kind,
                       subject=subject, outcome=f.get("outcome") or "", detail=detail, at=at)


def _bounded(detail: dict[str, Any]) -> dict[str, Any]:
    """Details are small: string values cut to 256 characters, at most 32 keys (canonical JSON <= ~8 kB)."""
    out: dict[str, Any] = {}
    for k, v in list(detail.items())[:32]:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, str | int | bool) or v is None:
            out[str(k)[:64]] = v[:256] if isinstance(v, str) else v
        else:
            out[str(k)[:64]] = orjson.dumps(v, default=str).decode()[:256]
    return out
