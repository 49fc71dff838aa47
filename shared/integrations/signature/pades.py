"""PAdES signatures with pyHanko: B-B, B-T (+ RFC 3161 timestamp), B-LT (+ certificates, OCSP/CRL
embedded), B-LTA (+ a document timestamp after the DSS update).

`sign_pdf` signs in one go with a signer that holds the key (PKCS#11). `prepare_pdf` / `finish_pdf` split
the work for remote signing: prepare the placeholder and the signed attributes, send their hash, and
later embed the CMS built around the signature value the official's service returned.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from typing import Any

from shared.integrations.signature.appearance import Appearance, stamp_style, text_params
from shared.reliability.errors import ProviderRejected, ProviderUnavailable

LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")
FIELD = "ChuKySo"  # the signature field's name ("digital signature")


class InvalidDocument(ValueError):
    """The input is not something we can sign (not a PDF, encrypted, damaged)."""


@dataclass(slots=True)
class SignOptions:
    level: str = "B-T"
    reason: str | None = None
    location: str | None = None
    appearance: Appearance | None = None
    field_name: str = FIELD


def _reader(data: bytes) -> Any:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.misc import PdfReadError

    if not data.startswith(b"%PDF-"):
        raise InvalidDocument("not a PDF (no %PDF- header)")
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    except (PdfReadError, ValueError, KeyError, IndexError) as exc:
        raise InvalidDocument(f"unreadable PDF: {str(exc)[:200]}") from exc
    if writer.prev.encrypted:
        raise InvalidDocument("encrypted PDFs are not signed")
    return writer


def _field_name(writer: Any, base: str) -> str:
    from pyhanko.sign.fields import enumerate_sig_fields

    taken = {name for name, _v, _r in enumerate_sig_fields(writer.prev)}
    if base not in taken:
        return base
    n = 2
    while f"{base}{n}" in taken:
        n += 1
    return f"{base}{n}"


def _metadata(opts: SignOptions, field: str, vc: Any) -> Any:
    from pyhanko.sign import fields
    from pyhanko.sign.signers import PdfSignatureMetadata

    if opts.level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    lt = opts.level in ("B-LT", "B-LTA")
    return PdfSignatureMetadata(
        field_name=field, md_algorithm="sha256", reason=opts.reason, location=opts.location,
        subfilter=fields.SigSeedSubFilter.PADES, embed_validation_info=lt, use_pades_lta=opts.level == "B-LTA",
        validation_context=vc if lt else None)


def _field_spec(field: str, opts: SignOptions, page_count: int) -> Any:
    from pyhanko.sign.fields import SigFieldSpec

    if opts.appearance is None:
        return SigFieldSpec(field)
    page = opts.appearance.page
    if page < 0:
        page = page_count + page
    if not 0 <= page < page_count:
        raise InvalidDocument(f"page {opts.appearance.page} is outside the document ({page_count} pages)")
    return SigFieldSpec(field, on_page=page, box=opts.appearance.box)


def _pdf_signer(writer: Any, signer: Any, opts: SignOptions, timestamper: Any, vc: Any, font: str) -> Any:
    from pyhanko.sign.signers import PdfSigner

    if opts.level != "B-B" and timestamper is None:
        raise ValueError(f"{opts.level} needs a time-stamping authority")
    field = _field_name(writer, opts.field_name)
    page_count = int(writer.root["/Pages"]["/Count"])
    style = stamp_style(font, opts.appearance) if opts.appearance is not None else None
    return PdfSigner(_metadata(opts, field, vc), signer, timestamper=timestamper if opts.level != "B-B" else None,
                     stamp_style=style, new_field_spec=_field_spec(field, opts, page_count))


async def sign_pdf(data: bytes, signer: Any, opts: SignOptions, *, timestamper: Any = None, vc: Any = None,
                   font: str = "") -> tuple[bytes, str]:
    """The signed PDF (an incremental update of `data`) and the name of the signature field."""
    writer = _reader(data)
    pdf_signer = _pdf_signer(writer, signer, opts, timestamper, vc, font)
    out = io.BytesIO()
    try:
        await pdf_signer.async_sign_pdf(writer, output=out, appearance_text_params=text_params())
    except Exception as exc:
        raise _classify(exc) from exc
    return out.getvalue(), str(pdf_signer.signature_meta.field_name)


def _classify(exc: Exception) -> Exception:
    """TSA or revocation servers down are retryable (never a silent downgrade); others propagate."""
    from pyhanko.sign.general import SigningError
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError

    if isinstance(exc, ProviderUnavailable | ProviderRejected):
        return exc
    if isinstance(exc, TimestampRequestError):
        return ProviderUnavailable("tsa", f"time-stamping authority unavailable: {str(exc)[:200]}")
    if isinstance(exc, SigningError) and "validation" in str(exc).lower():
        return ProviderUnavailable("ocsp", f"validation data unavailable: {str(exc)[:200]}")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and isinstance(cause, Exception) and cause is not exc:
        inner = _classify(cause)
        if isinstance(inner, ProviderUnavailable):
            return inner
    return exc


# -- remote signing: prepare, then finish ----------------------------------------------------------------
@dataclass(slots=True)
class Prepared:
    """Everything needed to finish later: the PDF with its placeholder goes to S3, this to Redis."""

    pdf: bytes
    document_digest: bytes
    reserved_start: int
    reserved_end: int
    signed_attrs: bytes  # DER of the CMS signed attributes; their SHA-256 is what the official signs
    level: str
    field: str

    @property
    def to_be_signed(self) -> bytes:
        return hashlib.sha256(self.signed_attrs).digest()

    def state(self) -> dict[str, str]:
        return {"document_digest": self.document_digest.hex(), "reserved_start": str(self.reserved_start),
                "reserved_end": str(self.reserved_end), "signed_attrs": base64.b64encode(self.signed_attrs).decode(),
                "level": self.level, "field": self.field}

    @classmethod
    def from_state(cls, pdf: bytes, st: dict[str, str]) -> Prepared:
        return cls(pdf, bytes.fromhex(st["document_digest"]), int(st["reserved_start"]), int(st["reserved_end"]),
                   base64.b64decode(st["signed_attrs"]), st["level"], st["field"])


def _external(cert: Any, chain: list[Any], value: bytes | None) -> Any:
    from pyhanko.sign.signers import ExternalSigner
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    return ExternalSigner(cert, SimpleCertificateStore.from_certs(chain), signature_value=value or bytes(256))


async def prepare_pdf(data: bytes, cert: Any, chain: list[Any], opts: SignOptions, *, font: str = "",
                      timestamper: Any = None) -> Prepared:
    """The PDF with a signature placeholder and the signed attributes whose hash the official signs."""
    writer = _reader(data)
    signer = _external(cert, chain, None)
    # B-LT/B-LTA validation data is added when finishing (after the official signed); prepare as B-T
    prep_opts = SignOptions("B-T" if opts.level != "B-B" else "B-B", opts.reason, opts.location, opts.appearance,
                            opts.field_name)
    pdf_signer = _pdf_signer(writer, signer, prep_opts, timestamper, None, font)
    try:
        prep_digest, _tbs, output = await pdf_signer.async_digest_doc_for_signing(
            writer, appearance_text_params=text_params(), bytes_reserved=16384 + 8192 * (opts.level != "B-B"))
    except Exception as exc:
        raise _classify(exc) from exc
    attrs = await signer.signed_attrs(prep_digest.document_digest, "sha256", use_pades=True,
                                      timestamper=None, dry_run=False)
    return Prepared(output.getvalue(), prep_digest.document_digest, prep_digest.reserved_region_start,
                    prep_digest.reserved_region_end, attrs.dump(), opts.level, pdf_signer.signature_meta.field_name)


async def finish_pdf(prepared: Prepared, cert: Any, chain: list[Any], signature_value: bytes, *,
                     timestamper: Any = None, vc: Any = None) -> bytes:
    """Embed the CMS around `signature_value` (+ timestamp, + validation data for B-LT/B-LTA)."""
    from asn1crypto import cms
    from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
    from pyhanko.sign.signers.pdf_signer import PdfTBSDocument

    signer = _external(cert, chain, signature_value)
    attrs = cms.CMSAttributes.load(prepared.signed_attrs)
    try:
        cms_obj = await signer.async_sign_prescribed_attributes(
            "sha256", signed_attrs=attrs, timestamper=timestamper if prepared.level != "B-B" else None)
    except Exception as exc:
        raise _classify(exc) from exc
    digest = PreparedByteRangeDigest(prepared.document_digest, prepared.reserved_start, prepared.reserved_end)
    out = io.BytesIO(prepared.pdf)
    await PdfTBSDocument.async_finish_signing(out, digest, cms_obj)
    signed = out.getvalue()
    if prepared.level in ("B-LT", "B-LTA"):
        signed = await add_ltv(signed, prepared.field, vc, timestamper if prepared.level == "B-LTA" else None)
    return signed


async def add_ltv(data: bytes, field: str, vc: Any, timestamper: Any) -> bytes:
    """B-LT: a DSS with the signer's certificates and OCSP/CRL; B-LTA: then a document timestamp."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.signers import PdfTimeStamper
    from pyhanko.sign.validation import async_add_validation_info

    reader = PdfFileReader(io.BytesIO(data))
    sig = next(s for s in reader.embedded_signatures if s.field_name == field)
    out = io.BytesIO()
    try:
        await async_add_validation_info(sig, vc, output=out)
        if timestamper is not None:
            from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

            w = IncrementalPdfFileWriter(io.BytesIO(out.getvalue()))
            out2 = io.BytesIO()
            await PdfTimeStamper(timestamper).async_timestamp_pdf(w, "sha256", vc, output=out2)
            return out2.getvalue()
    except Exception as exc:
        raise _classify(exc) from exc
    return out.getvalue()


def signature_times(signed: bytes, field: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(self-reported signing time, signature timestamp's genTime) of the signature in `field`."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    sig = next((s for s in PdfFileReader(io.BytesIO(signed)).embedded_signatures if s.field_name == field), None)
    if sig is None:
        return None, None
    ts = None
    for attr in sig.signer_info["unsigned_attrs"] or []:
        if attr["type"].native == "signature_time_stamp_token":
            tst = attr["values"][0]["content"]["encap_content_info"]["content"].parsed
            ts = tst["gen_time"].native
    return sig.self_reported_timestamp, ts
