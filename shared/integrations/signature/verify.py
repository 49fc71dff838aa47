"""Verification of signed PDFs (pyHanko's validator) and XML (signxml + the XAdES timestamp), as the
`verified` event and `dvci sign verify` report it.

PDFs carrying validation data (a DSS: B-LT, B-LTA) are validated from that data alone, offline, hard-fail:
an archived file stays valid when the OCSP/CRL servers are gone. Others fetch revocation data online; when
it cannot be had, the signature is reported with `revocation_checked: false` and a problem.
"""

from __future__ import annotations

import io
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.integrations.signature.certs import close_context, validation_context

log = logging.getLogger("dvci.signing")


@dataclass(slots=True)
class SignatureReport:
    signer_subject: str
    signed_at: str | None
    level: str
    intact: bool
    trusted: bool
    timestamp_valid: bool | None
    revocation_checked: bool
    modification: str  # none | permitted | not_permitted
    problems: list[str] = field(default_factory=list)
    field_name: str | None = None
    kind: str = "signature"  # signature | document_timestamp

    @property
    def ok(self) -> bool:
        return self.intact and self.trusted and self.modification != "not_permitted" \
            and self.timestamp_valid is not False and not self.problems


@dataclass(slots=True)
class Report:
    valid: bool
    signatures: list[SignatureReport]

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "signatures": [
            {k: v for k, v in asdict(s).items() if k not in ("field_name", "kind")} for s in self.signatures]}


def _modification(status: Any) -> str:
    from pyhanko.sign.diff_analysis import ModificationLevel

    level = getattr(status, "modification_level", None)
    if level is None or level == ModificationLevel.NONE:
        return "none" if getattr(status, "docmdp_ok", True) is not False else "not_permitted"
    if level == ModificationLevel.OTHER or getattr(status, "docmdp_ok", True) is False:
        return "not_permitted"
    return "permitted"


def _level(has_ts: bool, has_dss: bool, doc_ts_after: bool) -> str:
    if not has_ts:
        return "B-B"
    if has_dss and doc_ts_after:
        return "B-LTA"
    if has_dss:
        return "B-LT"
    return "B-T"


async def verify_pdf(data: bytes, trust_roots: list[Any], intermediates: list[Any] | None = None) -> Report:
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        sigs = list(reader.embedded_signatures)
    except (PdfReadError, ValueError, KeyError, IndexError) as exc:
        return Report(False, [SignatureReport("", None, "", False, False, None, False, "not_permitted",
                                              [f"unreadable PDF: {str(exc)[:160]}"])])
    if not sigs:
        return Report(False, [])
    dss = DocumentSecurityStore.read_dss(reader) if "/DSS" in reader.root else None
    crls = [o.get_object().data for o in dss.crls] if dss is not None else []
    ocsps = [o.get_object().data for o in dss.ocsps] if dss is not None else []
    dss_certs = list(dss.load_certs()) if dss is not None else []
    reports: list[SignatureReport] = []
    for idx, sig in enumerate(sigs):
        doc_ts_after = any(s.sig_object.get("/Type") == "/DocTimeStamp" for s in sigs[idx + 1:])
        is_doc_ts = sig.sig_object.get("/Type") == "/DocTimeStamp"
        offline = dss is not None
        vc = validation_context(trust_roots, [*(intermediates or []), *dss_certs], fetching=not offline,
                                mode="hard-fail", crls=crls, ocsps=ocsps)
        problems: list[str] = []
        try:
            if is_doc_ts:
                st: Any = await async_validate_pdf_timestamp(sig, validation_context=vc)
            else:
                st = await async_validate_pdf_signature(sig, vc, ts_validation_context=vc)
            revocation_checked = bool(st.trusted)
            if not st.trusted and not offline and not is_doc_ts:  # maybe only the revocation servers are down
                await close_context(vc)
                vc = validation_context(trust_roots, intermediates or [], fetching=True, mode="soft-fail")
                st2 = await async_validate_pdf_signature(sig, vc, ts_validation_context=vc)
                if st2.trusted and not st2.revoked:
                    st, revocation_checked = st2, False
                    problems.append("revocation status could not be checked")
        except Exception as exc:  # a broken signature structure is a finding, not a crash
            log.info("signature validation raised", extra={"error": type(exc).__name__})
            reports.append(SignatureReport("", None, "", False, False, None, False, "not_permitted",
                                           [f"validation failed: {type(exc).__name__}: {str(exc)[:160]}"],
                                           sig.field_name))
            continue
        finally:
            await close_context(vc)
        cert = sig.signer_cert
        ts_valid = None
        if is_doc_ts:
            ts_valid = bool(st.valid and st.intact)
        elif getattr(st, "timestamp_validity", None) is not None:
            ts_valid = bool(st.timestamp_validity.valid and st.timestamp_validity.intact
                            and st.timestamp_validity.trusted)
        signed_at = st.timestamp if is_doc_ts else (
            st.timestamp_validity.timestamp if getattr(st, "timestamp_validity", None) is not None
            else st.signer_reported_dt)
        if not st.intact:
            problems.append("the signed bytes were changed (digest mismatch)")
        elif not st.valid:
            problems.append("the signature value does not verify")
        if st.intact and st.valid and not st.trusted:
            problems.append("no valid path to a trusted root (or the certificate is revoked/expired)")
        mod = "none" if is_doc_ts else _modification(st)
        if mod == "not_permitted":
            problems.append("the document was modified after signing")
        reports.append(SignatureReport(
            signer_subject=cert.subject.human_friendly if cert is not None else "",
            signed_at=signed_at.isoformat() if signed_at else None,
            level="DocTimeStamp" if is_doc_ts else _level(ts_valid is not None, dss is not None, doc_ts_after),
            intact=bool(st.intact and st.valid), trusted=bool(st.trusted), timestamp_valid=ts_valid,
            revocation_checked=revocation_checked, modification=mod, problems=problems, field_name=sig.field_name,
            kind="document_timestamp" if is_doc_ts else "signature"))
    real = [r for r in reports if r.kind == "signature"]
    return Report(bool(real) and all(r.ok for r in reports), reports)


def format_report(report: Report) -> str:
    lines = [f"{'VALID' if report.valid else 'INVALID'}: {len(report.signatures)} signature(s)"]
    for i, s in enumerate(report.signatures, 1):
        lines.append(f"  [{i}] {s.level} {s.signer_subject}")
        lines.append(f"      signed at: {s.signed_at or '-'}   intact: {s.intact}   trusted: {s.trusted}   "
                     f"timestamp: {s.timestamp_valid}   revocation checked: {s.revocation_checked}   "
                     f"modification: {s.modification}")
        for p in s.problems:
            lines.append(f"      problem: {p}")
    return "\n".join(lines)
