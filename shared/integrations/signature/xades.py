"""XAdES (enveloped) with signxml: B-B (XAdES-BES: signing time, signing certificate v2, data object
format) and B-T (+ a SignatureTimeStamp over the canonicalised ds:SignatureValue, from the RFC 3161 TSA;
signxml has no XAdES-T, so that unsigned property is added and checked here).

Input XML is parsed without DTDs, external entities or network access; a DOCTYPE is refused outright.
The key may be in a PKCS#11 token: `TokenKey` gives signxml a key object whose `sign()` calls the token.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

from lxml import etree

from shared.integrations.signature.pades import InvalidDocument

XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
log = logging.getLogger("dvci.signing")


def safe_parse(data: bytes) -> Any:
    """Parse untrusted XML: no DTD, no entities, no network; a DOCTYPE is refused."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_blank_text=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise InvalidDocument(f"not well-formed XML: {str(exc)[:200]}") from exc
    doc = root.getroottree()
    if doc.docinfo.doctype or doc.docinfo.internalDTD is not None:
        raise InvalidDocument("XML with a DOCTYPE is refused (entities are never expanded)")
    return root


class TokenKey:
    """What signxml needs of a private key (`sign`, `public_key`), backed by a PKCS#11 token (RSA)."""

    def __init__(self, session: Any, key_label: str, public_key: Any):
        import pkcs11
        from pkcs11 import KeyType, ObjectClass

        self._public = public_key
        try:
            self._key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.RSA,
                                        label=key_label)
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as exc:
            from shared.reliability.errors import ProviderRejected

            raise ProviderRejected("hsm", "key_not_found", f"no RSA key labelled {key_label!r}") from exc

    def public_key(self) -> Any:
        return self._public

    def sign(self, data: bytes, padding: Any = None, algorithm: Any = None) -> bytes:
        from pkcs11 import Mechanism

        mech = {"sha256": Mechanism.SHA256_RSA_PKCS, "sha384": Mechanism.SHA384_RSA_PKCS,
                "sha512": Mechanism.SHA512_RSA_PKCS}[getattr(algorithm, "name", "sha256")]
        return bytes(self._key.sign(data, mechanism=mech))


def _pem_chain(cert: Any, chain: list[Any]) -> list[str]:
    from asn1crypto import pem

    return [pem.armor("CERTIFICATE", c.dump()).decode() for c in [cert, *chain]]


def sign_xml_sync(data: bytes, key: Any, cert: Any, chain: list[Any]) -> Any:
    """XAdES-BES enveloped signature (the root element signed); returns the lxml root."""
    from signxml import DigestAlgorithm, SignatureMethod
    from signxml.xades import XAdESSigner

    root = safe_parse(data)
    # signxml's default c14n (C14N 1.1): with exclusive c14n its SignedProperties digest does not verify
    signer = XAdESSigner(signature_algorithm=SignatureMethod.RSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256)
    return signer.sign(root, key=key, cert=_pem_chain(cert, chain))


def signature_value_digest(signature: Any) -> bytes:
    value = signature.find(f"{{{DS_NS}}}SignatureValue")
    if value is None:
        raise InvalidDocument("no ds:SignatureValue")
    return hashlib.sha256(etree.tostring(value, method="c14n", exclusive=True)).digest()


async def add_signature_timestamp(signed_root: Any, timestamper: Any) -> Any:
    """XAdES-T: an EncapsulatedTimeStamp over the exclusive-c14n of ds:SignatureValue (unsigned property)."""
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError

    from shared.reliability.errors import ProviderUnavailable

    sig = signed_root.find(f".//{{{DS_NS}}}Signature")
    qp = sig.find(f".//{{{XADES_NS}}}QualifyingProperties")
    try:
        token = await timestamper.async_timestamp(signature_value_digest(sig), "sha256")
    except TimestampRequestError as exc:
        raise ProviderUnavailable("tsa", f"time-stamping authority unavailable: {str(exc)[:200]}") from exc
    up = etree.SubElement(qp, f"{{{XADES_NS}}}UnsignedProperties")
    usp = etree.SubElement(up, f"{{{XADES_NS}}}UnsignedSignatureProperties")
    sts = etree.SubElement(usp, f"{{{XADES_NS}}}SignatureTimeStamp", Id="SignatureTimeStamp1")
    etree.SubElement(sts, f"{{{DS_NS}}}CanonicalizationMethod", Algorithm=EXC_C14N)
    ets = etree.SubElement(sts, f"{{{XADES_NS}}}EncapsulatedTimeStamp")
    ets.text = base64.b64encode(token.dump()).decode()
    return signed_root


def to_bytes(root: Any) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


async def verify_xml(data: bytes, trust_roots: list[Any], intermediates: list[Any]) -> Any:
    """A verify.Report for an XAdES document: the XML signature (signxml, chain to the trust roots) and
    the signature timestamp when present (pyHanko's TST validation)."""
    import asyncio

    from shared.integrations.signature.verify import Report, SignatureReport

    try:
        root = safe_parse(data)
    except InvalidDocument as exc:
        return Report(False, [SignatureReport("", None, "", False, False, None, False, "not_permitted", [str(exc)])])
    sigs = root.findall(f".//{{{DS_NS}}}Signature")
    if not sigs:
        return Report(False, [])
    reports = []
    for sig in sigs:
        problems: list[str] = []
        subject, intact, trusted, rev_checked = "", False, False, False
        embedded = _embedded_certs(sig)
        if not embedded:
            problems.append("no signer certificate in ds:KeyInfo")
        else:
            signer = embedded[0]
            subject = signer.subject.human_friendly
            try:
                await asyncio.to_thread(_verify_signxml, data, signer.dump())
                intact = True
            except Exception as exc:
                problems.append(f"signature does not verify: {str(exc)[:200]}")
            trusted, rev_checked, problem = await _trusted(signer, trust_roots, [*intermediates, *embedded[1:]])
            if problem:
                problems.append(problem)
        signed_at_el = sig.find(f".//{{{XADES_NS}}}SigningTime")
        signed_at = signed_at_el.text if signed_at_el is not None else None
        ts_valid: bool | None = None
        level = "B-B"
        ets = sig.find(f".//{{{XADES_NS}}}EncapsulatedTimeStamp")
        if ets is not None:
            level = "B-T"
            ts_valid, ts_time = await _verify_timestamp(sig, base64.b64decode(ets.text or ""), trust_roots,
                                                        intermediates)
            if not ts_valid:
                problems.append("the signature timestamp does not verify")
            elif ts_time:
                signed_at = ts_time
        reports.append(SignatureReport(subject, signed_at, level, intact, trusted, ts_valid, rev_checked,
                                       "none" if intact else "not_permitted", problems))
    return Report(all(r.ok for r in reports), reports)


def _embedded_certs(sig: Any) -> list[Any]:
    from asn1crypto import x509 as a1x509

    return [a1x509.Certificate.load(base64.b64decode("".join((el.text or "").split())))
            for el in sig.iterfind(f".//{{{DS_NS}}}X509Certificate")]


def _verify_signxml(data: bytes, signer_der: bytes) -> None:
    """The XML signature and its signed properties, against the certificate it carries (trust is checked
    separately, with revocation, by pyHanko's certificate validator)."""
    from cryptography import x509
    from signxml.xades import XAdESVerifier

    XAdESVerifier().verify(data, x509_cert=x509.load_der_x509_certificate(signer_der))


async def _trusted(cert: Any, trust_roots: list[Any], intermediates: list[Any]) -> tuple[bool, bool, str | None]:
    """(trusted, revocation_checked, problem) of the signer certificate, now."""
    from pyhanko_certvalidator import CertificateValidator

    from shared.integrations.signature.certs import close_context, validation_context

    for mode in ("hard-fail", "soft-fail"):
        vc = validation_context(trust_roots, intermediates, fetching=True, mode=mode)
        try:
            await CertificateValidator(cert, intermediate_certs=intermediates, validation_context=vc) \
                .async_validate_usage(set())
            return True, mode == "hard-fail", None if mode == "hard-fail" else "revocation status could not be checked"
        except Exception as exc:
            if mode == "soft-fail" or "revocation" not in str(exc).lower():
                return False, False, f"certificate not trusted: {str(exc)[:160]}"
        finally:
            await close_context(vc)
    return False, False, "certificate not trusted"


async def _verify_timestamp(sig: Any, token_der: bytes, trust_roots: list[Any],
                            intermediates: list[Any]) -> tuple[bool, str | None]:
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko.sign.validation.status import TimestampSignatureStatus

    from shared.integrations.signature.certs import close_context, validation_context

    expected = signature_value_digest(sig)
    try:
        token = cms.ContentInfo.load(token_der)
        vc = validation_context(trust_roots, intermediates, fetching=True, mode="soft-fail")
        try:
            kwargs = await validate_tst_signed_data(token["content"], vc, lambda _alg: expected)
        finally:
            await close_context(vc)
        status = TimestampSignatureStatus(**kwargs)
    except Exception:
        log.info("XAdES timestamp validation raised", exc_info=True)
        return False, None
    ok = bool(status.intact and status.valid and status.trusted)
    ts = status.timestamp
    return ok, ts.isoformat() if ts is not None else None
