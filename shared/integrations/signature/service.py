"""sign_document's work: sign with the agency's key (PKCS#11) or through an official's remote signing
service, verify, complete remote transactions (webhook or poll), audit every signature.

Idempotency (on top of the runtime's claim on (source, id)):
- the output key is derived from the event (`signed/<dossier>/<event digest>.pdf` unless given) and the
  output is written with If-None-Match: a takeover or redelivery finds it (`status`) and never signs again;
- a remote transaction's id is derived from the event; its prepared state (placeholder PDF in S3, signed
  attributes in Redis) is written once, before the official is asked, and a re-send carries the same id
  and the same hash (the provider de-duplicates), so the official is asked once;
- completion (webhook and poll may race) holds a short lock and checks the state first; the `signed` /
  `sign.failed` event has an id fixed by the transaction.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared.integrations.signature import RemoteCertificate, RemoteResult, RemoteSigner, audit, certs, pades
from shared.integrations.signature.appearance import VN, Appearance
from shared.integrations.signature.pkcs11 import TokenPool, token_pool
from shared.integrations.signature.settings import SigningSettings, signing_settings
from shared.integrations.signature.store import DocumentStore, ObjectMissing, ObjectTooLarge
from shared.reliability.errors import OutcomeUnknown, ProviderRejected, ProviderUnavailable
from shared.reliability.failover import deliver
from shared.reliability.keys import event_digest
from shared.reliability.pipeline import Pipeline
from shared.reliability.policy import ProviderPolicy
from shared.runtime.app import EventContext
from shared.security.crypto import blind_index
from shared.storage.redis import Keys

log = logging.getLogger("dvci.signing")
KIND = "signing"
PDF, XML = "application/pdf", "application/xml"
METHODS = ("hsm", "smartca", "mysign")
STATE_TTL_S = 7 * 24 * 3600


def now_vn() -> str:
    return dt.datetime.now(VN).isoformat(timespec="seconds")


def iso_vn(t: dt.datetime | None) -> str | None:
    return t.astimezone(VN).isoformat(timespec="seconds") if t is not None else None


@dataclass(slots=True)
class SignJob:
    """A sign request as the service needs it (the function's model, flattened)."""

    dossier_id: str
    s3_key: str
    content_type: str
    method: str
    level: str = "B-T"
    key_label: str | None = None
    user_id: str | None = None
    credential_id: str | None = None
    output_key: str | None = None
    reason: str | None = None
    location: str | None = None
    appearance: Appearance | None = None


@dataclass(slots=True)
class Signed:
    dossier_id: str
    output_key: str
    sha256: str
    level: str
    signer: dict[str, str]
    signed_at: str
    timestamp_at: str | None = None


@dataclass(slots=True)
class Pending:
    dossier_id: str
    method: str
    transaction_id: str
    expires_at: str


@dataclass(slots=True)
class Failed:
    dossier_id: str
    reason: str
    detail: str


Outcome = Signed | Pending | Failed
Emit = Callable[[str, dict[str, Any], str, dict[str, str]], Awaitable[Any]]


def _meta(s: Signed, event: str) -> dict[str, str]:
    """S3 metadata of an output: enough to answer a redelivery without reading the object."""
    return {"dvci-event": event, "dvci-sha256": s.sha256, "dvci-level": s.level, "dvci-signed-at": s.signed_at,
            "dvci-timestamp-at": s.timestamp_at or "", "dvci-signer-subject": _ascii(s.signer["subject"]),
            "dvci-signer-serial": s.signer["serial"], "dvci-signer-issuer": _ascii(s.signer["issuer"])}


def _ascii(text: str) -> str:
    """S3 metadata is ASCII: non-ASCII text travels base64 (prefix `b64:`)."""
    return text if text.isascii() else "b64:" + base64.b64encode(text.encode()).decode()


def _unascii(text: str) -> str:
    return base64.b64decode(text[4:]).decode() if text.startswith("b64:") else text


def _from_meta(dossier_id: str, key: str, m: dict[str, str]) -> Signed:
    return Signed(dossier_id, key, m.get("dvci-sha256", ""), m.get("dvci-level", ""),
                  {"subject": _unascii(m.get("dvci-signer-subject", "")), "serial": m.get("dvci-signer-serial", ""),
                   "issuer": _unascii(m.get("dvci-signer-issuer", ""))},
                  m.get("dvci-signed-at", ""), m.get("dvci-timestamp-at") or None)


@dataclass
class SigningService:
    settings: SigningSettings
    redis: Any  # redis.asyncio client (state, audit)
    keys: Keys
    pipeline: Pipeline
    store: DocumentStore
    remotes: dict[str, RemoteSigner]
    pool: TokenPool | None = None
    _checker: certs.CertificateChecker | None = None
    _roots: list[Any] = field(default_factory=list)
    _chain: list[Any] = field(default_factory=list)
    _tsa: tuple[Any, Any] | None = None

    # -- trust material -----------------------------------------------------------------------------
    def trust(self) -> tuple[list[Any], list[Any]]:
        if not self._roots:
            self._roots = certs.load_pem_bundle(self.settings.trust_roots_path)
            path = self.settings.intermediates_path
            self._chain = certs.load_pem_bundle(path) if path.exists() else []
        return self._roots, self._chain

    def checker(self) -> certs.CertificateChecker:
        if self._checker is None:
            roots, chain = self.trust()
            self._checker = certs.CertificateChecker(roots, chain, ttl_s=self.settings.cert_check_ttl_s)
        return self._checker

    def timestamper(self) -> Any:
        """One per service: pyHanko sizes the signature with a dummy timestamp, cached per timestamper."""
        from pyhanko.sign.timestamps import HTTPTimeStamper

        from shared.runtime.http import get_session

        session = get_session()
        if self._tsa is None or self._tsa[0] is not session:
            self._tsa = (session, HTTPTimeStamper(self.settings.tsa_url, session=session,
                                                  timeout=int(max(1, self.settings.tsa_timeout_s))))
        return self._tsa[1]

    def validation_context(self) -> Any:
        roots, chain = self.trust()
        return certs.validation_context(roots, chain, fetching=True)

    def tokens(self) -> TokenPool:
        if self.pool is None:
            self.pool = token_pool(self.settings)
        return self.pool

    # -- signing ------------------------------------------------------------------------------------
    async def sign(self, ctx: EventContext, job: SignJob) -> Outcome:
        digest = event_digest(ctx.event.source, ctx.event.id)
        ext = "pdf" if job.content_type == PDF else "xml"
        output_key = job.output_key or f"signed/{job.dossier_id}/{digest}.{ext}"
        if job.method == "hsm" and not job.key_label:
            return Failed(job.dossier_id, "key_not_found", "signer.key_label is required for method hsm")
        if job.method != "hsm" and not job.user_id:
            return Failed(job.dossier_id, "key_not_found", f"signer.user_id is required for method {job.method}")
        if job.content_type == XML and job.level not in ("B-B", "B-T"):
            return Failed(job.dossier_id, "invalid_document", "XAdES is signed at B-B or B-T only")
        if job.content_type == XML and job.method != "hsm":
            return Failed(job.dossier_id, "invalid_document", "remote signing is for PDF documents")
        adm = await self.pipeline.admit(ctx, [job.method])
        adm.audit = {"kind": KIND, "method": job.method, "level": job.level, "dossier_id": job.dossier_id}
        requested_by = ctx.event.source
        try:
            if job.method == "hsm":
                delivery: Any = _HsmDelivery(self, job, output_key, digest, requested_by, ctx.event.id)
            else:
                tx = event_digest("sign", ctx.event.source, ctx.event.id)
                delivery = _RemoteDelivery(self, job, output_key, tx, requested_by, ctx.event.id)
            _provider, outcome = await deliver(self.pipeline, adm, [job.method], delivery, attempts=1,
                                               remaining=ctx.remaining)
        except ProviderRejected as exc:
            await self._audit_refusal(job, exc.reason, exc.detail, requested_by, ctx.event.id)
            return Failed(job.dossier_id, exc.reason, exc.detail)
        except OutcomeUnknown as exc:
            return Failed(job.dossier_id, "outcome_unknown", exc.detail)
        adm.audit["outcome"] = type(outcome).__name__.lower()
        return outcome

    async def _audit_refusal(self, job: SignJob, reason: str, detail: str, who: str, event_id: str) -> None:
        await audit.record(self.redis, self.keys, action="sign", dossier_id=job.dossier_id, document_sha256="",
                           level=job.level, signer={"key_label": job.key_label or "",
                                                    "user": "remote" if job.user_id else ""},
                           method=job.method, requested_by=who,
                           event_id=event_id, outcome="refused", detail=f"{reason}: {detail}")

    async def load(self, job: SignJob) -> bytes:
        try:
            return await self.store.get(job.s3_key, self.settings.max_document_bytes)
        except ObjectMissing as exc:
            raise ProviderRejected(job.method, "invalid_document", f"no document at {job.s3_key!r}") from exc
        except ObjectTooLarge as exc:
            raise ProviderRejected(job.method, "invalid_document", str(exc)) from exc

    async def existing(self, job: SignJob, output_key: str, event: str) -> Signed | None:
        meta = await self.store.head(output_key)
        if meta is None:
            return None
        if meta.get("dvci-event") != event:
            raise ProviderRejected(job.method, "invalid_document",
                                   f"output_key {output_key!r} already holds another signed document")
        return _from_meta(job.dossier_id, output_key, meta)

    async def write(self, job: SignJob, output_key: str, event: str, data: bytes, result: Signed) -> Signed:
        if not await self.store.put_new(output_key, data, job.content_type, _meta(result, event)):
            found = await self.existing(job, output_key, event)  # a racing attempt wrote first: theirs stands
            if found is not None:
                return found
        return result

    async def sign_hsm(self, job: SignJob, data: bytes) -> tuple[bytes, dict[str, str], str | None, str | None]:
        """(signed bytes, signer identity, signed_at, timestamp_at) with the token's key."""
        assert job.key_label
        pool = self.tokens()
        opts = pades.SignOptions(job.level, job.reason, job.location, job.appearance)
        vc = self.validation_context() if job.level in ("B-LT", "B-LTA") else None
        try:
            async with pool.session() as session:
                signer = await pool.signer(session, job.key_label)
                cert = signer.signing_cert
                await self.checker().check(cert, "hsm")
                if job.content_type == PDF:
                    tsa = self.timestamper() if job.level != "B-B" else None
                    signed, fld = await pades.sign_pdf(data, signer, opts, timestamper=tsa, vc=vc,
                                                       font=self.settings.font)
                else:
                    from cryptography import x509 as cx509

                    from shared.integrations.signature import xades

                    key = xades.TokenKey(session, job.key_label, cx509.load_der_x509_certificate(cert.dump())
                                         .public_key())
                    _roots, chain = self.trust()
                    root = await asyncio.to_thread(xades.sign_xml_sync, data, key, cert,
                                                   [c for c in chain if c.subject != c.issuer])
        finally:
            if vc is not None:
                await certs.close_context(vc)
        if job.content_type == PDF:
            at, ts = pades.signature_times(signed, fld)
            return signed, certs.identity(cert), iso_vn(at) or now_vn(), iso_vn(ts)
        from shared.integrations.signature import xades

        ts_at = None
        if job.level == "B-T":
            root = await xades.add_signature_timestamp(root, self.timestamper())
            ts_at = now_vn()
        return xades.to_bytes(root), certs.identity(cert), now_vn(), ts_at

    # -- remote transactions ------------------------------------------------------------------------------
    def tx_key(self, tx: str) -> str:
        return self.keys.key(KIND, "tx", tx)

    @property
    def pending_key(self) -> str:
        return self.keys.key(KIND, "pending")

    async def tx_state(self, tx: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.tx_key(tx))
        return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in raw.items()}

    async def remote_prepare(self, job: SignJob, output_key: str, tx: str, who: str, event_id: str) -> dict[str, str]:
        """Prepare once: the placeholder PDF to S3, the state to Redis (before the official is asked)."""
        state = await self.tx_state(tx)
        if state:
            return state
        remote = self.remotes[job.method]
        assert job.user_id
        rc: RemoteCertificate = await remote.certificate(job.user_id, job.credential_id)
        await self.checker().check(rc.cert, job.method)
        data = await self.load(job)
        opts = pades.SignOptions(job.level, job.reason, job.location, job.appearance)
        prepared = await pades.prepare_pdf(data, rc.cert, rc.chain, opts, font=self.settings.font,
                                           timestamper=self.timestamper() if job.level != "B-B" else None)
        prepared_key = f"pending/{tx}.pdf"
        await self.store.put(prepared_key, prepared.pdf, PDF)
        expires = time.time() + self.settings.remote_timeout_s
        state = {**prepared.state(), "tx": tx, "provider": job.method, "dossier_id": job.dossier_id,
                 "output_key": output_key, "prepared_key": prepared_key,
                 "user": blind_index("signing-user", job.user_id),
                 "cert": base64.b64encode(rc.cert.dump()).decode(), "credential_id": rc.credential_id,
                 "chain": ",".join(base64.b64encode(c.dump()).decode() for c in rc.chain),
                 "document_sha256": hashlib.sha256(data).hexdigest(), "expires_at": str(expires),
                 "state": "prepared", "requested_by": who, "event_id": event_id, "provider_ref": ""}
        key = self.tx_key(tx)
        created = await self.redis.hsetnx(key, "tx", tx)
        if not created:  # another attempt prepared first: its state (and hash) is the one sent
            return await self.tx_state(tx)
        await self.redis.hset(key, mapping=state)
        await self.redis.expire(key, STATE_TTL_S)
        return state

    async def remote_request(self, job: SignJob, state: dict[str, str]) -> Pending:
        tx = state["tx"]
        if state.get("state") == "prepared" or not state.get("provider_ref"):
            remote = self.remotes[job.method]
            assert job.user_id
            digest = hashlib.sha256(base64.b64decode(state["signed_attrs"])).digest()
            ref = await remote.request(tx, job.user_id, state["credential_id"], digest,
                                       f"Hồ sơ {job.dossier_id}: ký văn bản")
            await self.redis.hset(self.tx_key(tx), mapping={"provider_ref": ref, "state": "waiting"})
            await self.redis.zadd(self.pending_key, {tx: float(state["expires_at"])})
        expires = dt.datetime.fromtimestamp(float(state["expires_at"]), VN).isoformat(timespec="seconds")
        return Pending(state["dossier_id"], job.method, tx, expires)

    async def complete(self, tx: str, result: RemoteResult, emit: Emit) -> str:
        """Apply a provider's answer once: emit `signed` or `sign.failed`; returns what happened."""
        lock = self.keys.key(KIND, "txlock", tx)
        if not await self.redis.set(lock, "1", nx=True, px=60_000):
            return "busy"
        try:
            st = await self.tx_state(tx)
            if not st:
                return "unknown"
            if st.get("state") in ("signed", "failed"):
                return "already_" + st["state"]
            if result.status == "pending":
                return "pending"
            if result.status in ("rejected", "expired"):
                reason = "user_rejected" if result.status == "rejected" else "user_timeout"
                return await self._fail(st, reason, result.detail or reason, emit)
            assert result.signature is not None
            return await self._finish(st, result.signature, emit)
        finally:
            await self.redis.delete(lock)

    async def _fail(self, st: dict[str, str], reason: str, detail: str, emit: Emit) -> str:
        from functions.sign_document.models import FAILED

        tx = st["tx"]
        await emit(FAILED, {"dossier_id": st["dossier_id"], "reason": reason, "detail": detail[:300]}, tx,
                   {"dossierid": st["dossier_id"]})
        await self.redis.hset(self.tx_key(tx), mapping={"state": "failed", "reason": reason})
        await self.redis.zrem(self.pending_key, tx)
        await audit.record(self.redis, self.keys, action="sign", dossier_id=st["dossier_id"],
                           document_sha256=st.get("document_sha256", ""), level=st["level"],
                           signer=self._signer_of(st), method=st["provider"], requested_by=st["requested_by"],
                           event_id=st["event_id"], outcome=reason, detail=detail)
        return reason

    def _signer_of(self, st: dict[str, str]) -> dict[str, str]:
        return certs.identity(certs.from_der(base64.b64decode(st["cert"])))

    async def _finish(self, st: dict[str, str], signature: bytes, emit: Emit) -> str:
        from cryptography import x509 as cx509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        from functions.sign_document.models import SIGNED

        tx = st["tx"]
        cert = certs.from_der(base64.b64decode(st["cert"]))
        chain = [certs.from_der(base64.b64decode(c)) for c in st["chain"].split(",") if c]
        attrs = base64.b64decode(st["signed_attrs"])
        try:  # the provider's signature must be over what we sent, with the official's key
            public = cx509.load_der_x509_certificate(cert.dump()).public_key()
            if not isinstance(public, rsa.RSAPublicKey):
                raise TypeError("only RSA officials' keys are supported")
            public.verify(signature, attrs, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError, TypeError):
            return await self._fail(st, "outcome_unknown", "the provider's signature does not match the request",
                                    emit)
        job = SignJob(st["dossier_id"], "", PDF, st["provider"], st["level"])
        meta = await self.store.head(st["output_key"])
        if meta is not None and meta.get("dvci-event") == tx:
            result = _from_meta(st["dossier_id"], st["output_key"], meta)
        else:
            pdf = await self.store.get(st["prepared_key"], self.settings.max_document_bytes * 2)
            prepared = pades.Prepared.from_state(pdf, st)
            vc = self.validation_context() if st["level"] in ("B-LT", "B-LTA") else None
            try:
                signed = await pades.finish_pdf(prepared, cert, chain, signature,
                                                timestamper=self.timestamper() if st["level"] != "B-B" else None,
                                                vc=vc)
            finally:
                if vc is not None:
                    await certs.close_context(vc)
            at, ts = pades.signature_times(signed, prepared.field)
            result = Signed(st["dossier_id"], st["output_key"], hashlib.sha256(signed).hexdigest(), st["level"],
                            certs.identity(cert), iso_vn(at) or now_vn(), iso_vn(ts))
            result = await self.write(job, st["output_key"], tx, signed, result)
        await emit(SIGNED, signed_event(result), tx, {"dossierid": st["dossier_id"]})
        await self.redis.hset(self.tx_key(tx), mapping={"state": "signed", "sha256": result.sha256})
        await self.redis.zrem(self.pending_key, tx)
        await audit.record(self.redis, self.keys, action="sign", dossier_id=st["dossier_id"],
                           document_sha256=st.get("document_sha256", ""), level=st["level"], signer=result.signer,
                           method=st["provider"], requested_by=st["requested_by"], event_id=st["event_id"],
                           output_key=st["output_key"])
        return "signed"

    async def poll(self, emit: Emit, limit: int = 200) -> dict[str, int]:
        """The `sign-poll` job: time out expired transactions, ask the providers about the others."""
        counts = {"checked": 0, "signed": 0, "failed": 0, "timed_out": 0}
        now = time.time()
        expired = await self.redis.zrangebyscore(self.pending_key, "-inf", now, start=0, num=limit)
        for raw in expired:
            tx = raw.decode() if isinstance(raw, bytes) else raw
            st = await self.tx_state(tx)
            if st and st.get("state") == "waiting" and st.get("provider_ref"):  # a last look before giving up
                try:
                    res = await self.remotes[st["provider"]].status(tx, st["provider_ref"])
                    if res.status in ("signed", "rejected"):
                        out = await self.complete(tx, res, emit)
                        counts["signed" if out == "signed" else "failed"] += 1
                        continue
                except (ProviderUnavailable, ProviderRejected) as exc:
                    log.info("status query failed at timeout", extra={"provider": st["provider"], "error": str(exc)})
            out = await self.complete(tx, RemoteResult("expired", detail="no answer from the official in time"),
                                      emit)
            if out == "unknown":
                await self.redis.zrem(self.pending_key, tx)
            counts["timed_out"] += out == "user_timeout"
        waiting = await self.redis.zrangebyscore(self.pending_key, now, "+inf", start=0, num=limit)
        for raw in waiting:
            tx = raw.decode() if isinstance(raw, bytes) else raw
            st = await self.tx_state(tx)
            if not st or not st.get("provider_ref"):
                continue
            counts["checked"] += 1
            try:
                res = await self.remotes[st["provider"]].status(tx, st["provider_ref"])
            except (ProviderUnavailable, ProviderRejected) as exc:
                log.info("status query failed", extra={"provider": st["provider"], "error": str(exc)})
                continue
            if res.status != "pending":
                out = await self.complete(tx, res, emit)
                counts["signed" if out == "signed" else "failed"] += out in ("signed", "user_rejected",
                                                                             "user_timeout", "outcome_unknown")
        return counts

    # -- verification -------------------------------------------------------------------------------------
    async def verify(self, s3_key: str, content_type: str) -> Any:
        from shared.integrations.signature.verify import Report, SignatureReport, verify_pdf

        try:
            data = await self.store.get(s3_key, self.settings.max_document_bytes * 2)
        except (ObjectMissing, ObjectTooLarge) as exc:
            return Report(False, [SignatureReport("", None, "", False, False, None, False, "not_permitted",
                                                  [str(exc)[:200]])])
        roots, chain = self.trust()
        if content_type == XML:
            from shared.integrations.signature.xades import verify_xml

            return await verify_xml(data, roots, chain)
        return await verify_pdf(data, roots, chain)


def signed_event(s: Signed) -> dict[str, Any]:
    out: dict[str, Any] = {"dossier_id": s.dossier_id, "output_key": s.output_key, "sha256": s.sha256,
                           "level": s.level, "signer": s.signer, "signed_at": s.signed_at}
    if s.timestamp_at:
        out["timestamp_at"] = s.timestamp_at
    return out


@dataclass(frozen=True, slots=True)
class _HsmDelivery:
    service: SigningService
    job: SignJob
    output_key: str
    event: str
    who: str
    event_id: str

    async def send(self, provider: str) -> Signed:
        found = await self.service.existing(self.job, self.output_key, self.event)
        if found is not None:
            return found
        data = await self.service.load(self.job)
        try:
            signed, signer, signed_at, ts_at = await self.service.sign_hsm(self.job, data)
        except pades.InvalidDocument as exc:
            raise ProviderRejected(provider, "invalid_document", str(exc)) from exc
        result = Signed(self.job.dossier_id, self.output_key, hashlib.sha256(signed).hexdigest(), self.job.level,
                        signer, signed_at or now_vn(), ts_at)
        result = await self.service.write(self.job, self.output_key, self.event, signed, result)
        await audit.record(self.service.redis, self.service.keys, action="sign", dossier_id=self.job.dossier_id,
                           document_sha256=hashlib.sha256(data).hexdigest(), level=self.job.level, signer=signer,
                           method="hsm", requested_by=self.who, event_id=self.event_id, output_key=self.output_key)
        return result

    async def status(self, provider: str) -> Signed | None:
        return await self.service.existing(self.job, self.output_key, self.event)


@dataclass(frozen=True, slots=True)
class _RemoteDelivery:
    service: SigningService
    job: SignJob
    output_key: str
    tx: str
    who: str
    event_id: str

    async def send(self, provider: str) -> Pending:
        try:
            state = await self.service.remote_prepare(self.job, self.output_key, self.tx, self.who, self.event_id)
        except pades.InvalidDocument as exc:
            raise ProviderRejected(provider, "invalid_document", str(exc)) from exc
        return await self.service.remote_request(self.job, state)

    async def status(self, provider: str) -> Pending | None:
        state = await self.service.tx_state(self.tx)
        if not state:
            return None
        return await self.service.remote_request(self.job, state)  # re-sent under the same id: de-duplicated


_services: dict[int, SigningService] = {}


def default_service() -> SigningService:
    loop_id = id(asyncio.get_running_loop())
    service = _services.get(loop_id)
    if service is None:
        service = _services[loop_id] = build_service()
    return service


def build_service(settings: SigningSettings | None = None) -> SigningService:
    from shared.integrations.signature.mysign import MySign
    from shared.integrations.signature.smartca import SmartCa
    from shared.runtime.settings import runtime_settings
    from shared.storage.redis import get_fast_redis, get_redis

    settings = settings or signing_settings()
    keys = Keys(runtime_settings().env)
    pipeline = Pipeline(get_fast_redis(), keys, KIND, {m: ProviderPolicy(m) for m in METHODS})
    remotes: dict[str, RemoteSigner] = {"smartca": SmartCa(settings), "mysign": MySign(settings)}
    return SigningService(settings, get_redis(), keys, pipeline,
                          DocumentStore(settings.bucket, settings.s3_endpoint_url), remotes)
