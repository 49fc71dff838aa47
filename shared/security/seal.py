"""Sealing the audit chain to write-once storage, and verifying it.

The `audit-seal` job (a PingSource; `register(app)`) first absorbs the per-kind hot-path streams into the
chain (`Audit.absorb`), then writes the unsealed records as one segment to S3 with Object Lock in
compliance mode (retention from settings) in `DVCI_AUDIT_BUCKET`, then a signed manifest (Ed25519) naming
the segment, its first/last seq, the hash before it and its last hash, its SHA-256, and the previous
manifest; only then does it trim the sealed records from Redis.

    audit/<env>/segments/<first seq:012d>.jsonl      one canonical JSON record per line
    audit/<env>/manifests/<first seq:012d>.json      {segment, first_seq, last_seq, ..., sig}

`verify()` walks the manifests, their segments and the live chain, and returns the first bad record:
modified (hash), deleted (missing seq), reordered, truncated (head ahead of the chain), a segment replaced
(bytes differ from the signed manifest) or a manifest not signed by the audit key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.runtime.times import parse_time
from shared.security.audit import GENESIS, Audit, canonical, record_hash
from shared.security.crypto import CryptoConfigError, dev_env
from shared.storage.redis import Keys


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_AUDIT_", extra="ignore", populate_by_name=True)

    bucket: str = Field("dvci-audit", description="S3 bucket created with Object Lock enabled.")
    retention_days: int = Field(1825, ge=1, description="Object Lock (compliance) retention of segments.")
    signing_key: str | None = Field(None, description="Ed25519 private key seed, base64 of 32 bytes (a Secret).")
    verify_key: str | None = Field(None, description="Ed25519 public key, base64 (verification without the seed).")
    segment_max: int = Field(10000, ge=1, le=1_000_000, description="Records per sealed segment at most.")
    s3_endpoint_url: str | None = Field(None, validation_alias="S3_ENDPOINT_URL")
    region: str = Field("ap-southeast-1", validation_alias="AWS_DEFAULT_REGION")
    env: str = Field("dev", validation_alias="DVCI_ENV")


@lru_cache(maxsize=1)
def audit_settings() -> AuditSettings:
    return AuditSettings()


def _seed(s: AuditSettings) -> bytes:
    if s.signing_key:
        raw = base64.b64decode(s.signing_key)
        if len(raw) != 32:
            raise CryptoConfigError("DVCI_AUDIT_SIGNING_KEY must be 32 bytes (base64)")
        return raw
    if not dev_env(s.env):
        raise CryptoConfigError(f"DVCI_AUDIT_SIGNING_KEY is required in environment {s.env!r}")
    return hashlib.sha256(b"dvci-dev-only:audit-signing").digest()


def signer(s: AuditSettings) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_seed(s))


def verifier(s: AuditSettings) -> Ed25519PublicKey:
    if s.verify_key:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(s.verify_key))
    return signer(s).public_key()


def key_id(pub: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


class Archive:
    """The bucket's segments and manifests (boto3 in a thread)."""

    def __init__(self, s: AuditSettings):
        self.s = s
        self.prefix = f"audit/{s.env}/"
        self._client: Any = None

    def s3(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client("s3", endpoint_url=self.s.s3_endpoint_url, region_name=self.s.region,
                                        config=Config(connect_timeout=3, read_timeout=10,
                                                      retries={"max_attempts": 3}))
        return self._client

    def put_locked(self, key: str, body: bytes, content_type: str) -> str:
        until = datetime.now(UTC) + timedelta(days=self.s.retention_days)
        reply = self.s3().put_object(Bucket=self.s.bucket, Key=key, Body=body, ContentType=content_type,
                                     ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),
                                     ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
        return str(reply.get("VersionId") or "")

    def get(self, key: str) -> bytes:
        return bytes(self.s3().get_object(Bucket=self.s.bucket, Key=key)["Body"].read())

    def manifests(self) -> list[str]:
        keys: list[str] = []
        for page in self.s3().get_paginator("list_objects_v2").paginate(Bucket=self.s.bucket,
                                                                          Prefix=self.prefix + "manifests/"):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return sorted(keys)


def _sign(manifest: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    body = {k: v for k, v in manifest.items() if k != "sig"}
    return {**body, "sig": base64.b64encode(key.sign(canonical(body))).decode()}


async def seal(redis: Any, keys: Keys, s: AuditSettings | None = None) -> dict[str, int]:
    """Absorb, then seal every unsealed record (segments of at most `segment_max`); trim after sealing."""
    s = s or audit_settings()
    audit = Audit(redis, keys)
    absorbed = await audit.absorb()
    archive = Archive(s)
    key = signer(s)
    kid = key_id(key.public_key())
    sealed_segments = sealed_records = 0
    while True:
        seq, last_hash, previous = await redis.hmget(audit.sealed_key, ["seq", "hash", "manifest"])
        sealed_seq = int(seq) if seq is not None else 0
        prev_hash = last_hash.decode() if last_hash else GENESIS
        records = [r for r in await audit.live(sealed_seq) if isinstance(r.get("seq"), int)][: s.segment_max]
        if not records:
            break
        for r in records:
            r.pop("_id", None)
        first, last = records[0]["seq"], records[-1]["seq"]
        body = b"\n".join(canonical(r) for r in records) + b"\n"
        seg_key = f"{archive.prefix}segments/{first:012d}.jsonl"
        man_key = f"{archive.prefix}manifests/{first:012d}.json"
        version = await asyncio.to_thread(archive.put_locked, seg_key, body, "application/jsonl")
        manifest = _sign({
            "env": s.env, "segment": seg_key, "segment_version": version, "first_seq": first, "last_seq": last,
            "count": len(records), "first_prev": records[0]["prev"], "last_hash": records[-1]["hash"],
            "sha256": hashlib.sha256(body).hexdigest(), "previous": previous.decode() if previous else None,
            "previous_hash": prev_hash, "first_at": records[0]["at"], "last_at": records[-1]["at"],
            "sealed_at": datetime.now(UTC).isoformat(timespec="seconds"), "alg": "ed25519", "key_id": kid,
        }, key)
        await asyncio.to_thread(archive.put_locked, man_key, orjson.dumps(manifest), "application/json")
        # sealed: only now may Redis forget these records
        await redis.hset(audit.sealed_key, mapping={"seq": str(last), "hash": records[-1]["hash"],
                                                    "manifest": man_key})
        await redis.xtrim(audit.chain, minid=f"{last + 1}-0")
        sealed_segments += 1
        sealed_records += len(records)
    return {"absorbed": absorbed, "segments": sealed_segments, "sealed": sealed_records}


def register(app: Any) -> None:
    """Serve the `audit-seal` job on `app` (a PingSource sends {"job": "audit-seal"})."""
    from shared.storage.redis import get_redis

    @app.job("audit-seal")
    async def audit_seal(ctx: Any) -> dict[str, int]:
        return await seal(get_redis(), Keys(app.settings.env))


# -- verification -------------------------------------------------------------------------------------
@dataclass(slots=True)
class Report:
    ok: bool = True
    problem: str = ""
    bad_seq: int | None = None
    segments: int = 0
    sealed: int = 0
    live: int = 0
    checked: int = 0
    notes: list[str] = field(default_factory=list)

    def fail(self, problem: str, seq: int | None) -> Report:
        if self.ok:
            self.ok, self.problem, self.bad_seq = False, problem, seq
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problem": self.problem or None, "bad_seq": self.bad_seq, "segments": self.segments,
                "sealed_records": self.sealed, "live_records": self.live, "checked": self.checked}


def _in_range(at: str, since: float | None, until: float | None) -> bool:
    if since is None and until is None:
        return True
    try:
        t = parse_time(at).timestamp()
    except ValueError:
        return True
    return (since is None or t >= since) and (until is None or t <= until)


def _walk(records: list[dict[str, Any]], start_seq: int, start_prev: str, report: Report, where: str,
          since: float | None, until: float | None) -> tuple[int, str]:
    """Check `records` continue the chain at (start_seq, start_prev); returns the new (seq, hash)."""
    seqs = {r.get("seq") for r in records}
    expect, prev = start_seq + 1, start_prev
    for r in records:
        seq = r.get("seq")
        if not isinstance(seq, int):
            report.fail(f"{where}: unreadable record after seq {expect - 1}", expect)
            return expect, prev
        if seq != expect:
            if seq < expect or expect in seqs:
                report.fail(f"{where}: record seq {seq} out of order (reordered: seq {expect} expected here)", expect)
            else:
                report.fail(f"{where}: record seq {expect} deleted (the chain jumps from {expect - 1} to {seq})",
                            expect)
            return expect, prev
        if record_hash(r) != r.get("hash"):
            report.fail(f"{where}: record seq {seq} modified (its hash does not match its content)", seq)
            return expect, prev
        if r.get("prev") != prev:
            report.fail(f"{where}: record seq {seq - 1 if seq > 1 else seq} modified or replaced (record "
                        f"{seq} does not chain to it)", seq - 1 if seq > 1 else seq)
            return expect, prev
        if _in_range(str(r.get("at", "")), since, until):
            report.checked += 1
        prev = str(r["hash"])
        expect += 1
    return expect - 1, prev


async def verify(redis: Any, keys: Keys, s: AuditSettings | None = None, *, since: float | None = None,
                 until: float | None = None, archive: bool = True) -> Report:
    """Recompute the chain across the archive and the live stream; the first bad record, or counts."""
    s = s or audit_settings()
    report = Report()
    audit = Audit(redis, keys)
    seq, prev = 0, GENESIS
    prev_manifest: str | None = None
    if archive:
        arch = Archive(s)
        pub = verifier(s)
        for man_key in await asyncio.to_thread(arch.manifests):
            m = orjson.loads(await asyncio.to_thread(arch.get, man_key))
            body = {k: v for k, v in m.items() if k != "sig"}
            try:
                pub.verify(base64.b64decode(m.get("sig", "")), canonical(body))
            except (InvalidSignature, ValueError):
                return report.fail(f"manifest {man_key} is not signed by the audit key (replaced)", m.get("first_seq"))
            if m.get("previous") != prev_manifest or m.get("first_seq") != seq + 1 or m.get("first_prev") != prev:
                return report.fail(f"manifest {man_key} does not continue the chain at seq {seq + 1} "
                                   f"(segments deleted or reordered)", seq + 1)
            report.segments += 1
            data = await asyncio.to_thread(arch.get, str(m["segment"]))
            if hashlib.sha256(data).hexdigest() != m["sha256"]:
                first_bad = _first_difference(data, m)
                return report.fail(f"segment {m['segment']} replaced (its bytes differ from the signed manifest; "
                                   f"first bad record seq {first_bad})", first_bad)
            records = [orjson.loads(line) for line in data.splitlines() if line.strip()]
            report.sealed += len(records)
            seq, prev = _walk(records, seq, prev, report, m["segment"], since, until)
            if not report.ok:
                return report
            if seq != m["last_seq"] or prev != m["last_hash"]:
                return report.fail(f"segment {m['segment']} truncated (ends at seq {seq}, manifest says "
                                   f"{m['last_seq']})", seq + 1)
            prev_manifest = man_key
    sealed_seq, sealed_hash = await redis.hmget(audit.sealed_key, ["seq", "hash"])
    if archive and sealed_seq is not None and int(sealed_seq) > seq:
        return report.fail(f"sealed segments after seq {seq} are missing from the archive "
                           f"(Redis says sealed to {int(sealed_seq)})", seq + 1)
    if not archive and sealed_seq is not None:
        seq, prev = int(sealed_seq), sealed_hash.decode()
    live = await audit.live(seq)
    report.live = len(live)
    seq, prev = _walk(live, seq, prev, report, "live chain", since, until)
    if not report.ok:
        return report
    head_seq, head_hash = await audit.head()
    if head_seq > seq:
        return report.fail(f"live chain truncated: records after seq {seq} are missing (head is at {head_seq})",
                           seq + 1)
    if head_seq == seq and seq > 0 and head_hash != prev:
        return report.fail(f"record seq {seq} modified (the head's hash differs)", seq)
    return report


def _first_difference(data: bytes, m: dict[str, Any]) -> int:
    """The first record of a replaced segment that does not verify (its seq), for the report."""
    expect, prev = int(m["first_seq"]), str(m["first_prev"])
    for line in data.splitlines():
        try:
            r = orjson.loads(line)
        except orjson.JSONDecodeError:
            return expect
        if r.get("seq") != expect or record_hash(r) != r.get("hash"):
            return expect
        if r.get("prev") != prev:  # the record before it was rewritten (and re-hashed)
            return expect - 1
        prev, expect = str(r["hash"]), expect + 1
    return expect


async def show(redis: Any, keys: Keys, s: AuditSettings | None = None, *, dossier: str | None = None,
               actor: str | None = None, action: str | None = None, archive: bool = True,
               limit: int = 1000) -> list[dict[str, Any]]:
    """Records matching every given filter, oldest first: sealed segments, the live chain, and entries of the
    per-kind streams not absorbed yet."""
    s = s or audit_settings()
    audit = Audit(redis, keys)
    out: list[dict[str, Any]] = []

    def match(r: dict[str, Any]) -> bool:
        d = r.get("detail") or {}
        return ((dossier is None or dossier in (r.get("subject"), d.get("dossier_id"), d.get("dossierid"),
                                                d.get("dossier")))
                and (actor is None or r.get("actor") == actor or str(r.get("actor", "")).endswith(":" + actor))
                and (action is None or r.get("action") == action or str(r.get("action", "")).startswith(action + ".")))

    seq = 0
    if archive:
        arch = Archive(s)
        try:
            manifests = await asyncio.to_thread(arch.manifests)
        except Exception:  # no archive reachable: the live part is still worth showing
            manifests = []
        for man_key in manifests:
            m = orjson.loads(await asyncio.to_thread(arch.get, man_key))
            for line in (await asyncio.to_thread(arch.get, str(m["segment"]))).splitlines():
                r = orjson.loads(line)
                if match(r):
                    out.append(r)
            seq = int(m["last_seq"])
    for r in await audit.live(seq):
        r.pop("_id", None)
        if match(r):
            out.append(r)
    from shared.security.audit import from_entry

    for source in await audit.sources():
        kind = source[len(keys.prefix) + 1:].split("}", 1)[0]
        for entry_id, fields in await redis.xrange(source, count=limit):
            r = from_entry(kind, entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()}, 0, "")
            r.update(seq=None, prev=None, hash=None)  # not chained yet
            if match(r):
                out.append(r)
    return out[-limit:]

