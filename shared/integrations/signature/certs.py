"""Certificates: PEM bundles, trust roots, signer identity, and the check before signing (expired or
revoked signers are refused before anything is signed)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from asn1crypto import pem, x509

from shared.reliability.errors import ProviderRejected, ProviderUnavailable


def load_pem_bundle(path: str | Path) -> list[x509.Certificate]:
    data = Path(path).read_bytes()
    if not pem.detect(data):
        return [x509.Certificate.load(data)]
    return [x509.Certificate.load(der) for _t, _h, der in pem.unarmor(data, multiple=True)]


def from_der(der: bytes) -> x509.Certificate:
    return x509.Certificate.load(der)


def identity(cert: x509.Certificate) -> dict[str, str]:
    """{subject, serial, issuer} as events carry them (RFC 4514-ish human strings)."""
    return {"subject": cert.subject.human_friendly, "serial": format(cert.serial_number, "x"),
            "issuer": cert.issuer.human_friendly}


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.native.get("common_name", cert.subject.human_friendly))


def validation_context(trust_roots: list[x509.Certificate], intermediates: list[x509.Certificate], *,
                       fetching: bool, mode: str = "hard-fail", moment: dt.datetime | None = None,
                       crls: list[Any] | None = None, ocsps: list[Any] | None = None) -> Any:
    """A pyHanko ValidationContext; close it with `close_context` (its HTTP session)."""
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(trust_roots=trust_roots, other_certs=intermediates, allow_fetching=fetching,
                             revocation_mode=mode, moment=moment, crls=crls if crls is not None else [],
                             ocsps=ocsps if ocsps is not None else [])


async def close_context(vc: Any) -> None:
    """The async API leaves HTTP sessions open unless the context is closed."""
    if vc is not None:
        await vc.aclose()


class CertificateChecker:
    """Validates a signer's certificate now (path to a trust root, validity, OCSP/CRL hard-fail) before
    signing; a good answer is reused for `ttl_s` per certificate. Refusals: certificate_expired,
    certificate_revoked (ProviderRejected); revocation servers unreachable -> ProviderUnavailable."""

    def __init__(self, trust_roots: list[x509.Certificate], intermediates: list[x509.Certificate], *,
                 ttl_s: float = 300.0, timeout_s: float = 5.0, provider: str = "hsm"):
        self.trust_roots, self.intermediates = trust_roots, intermediates
        self.ttl_s, self.timeout_s, self.provider = ttl_s, timeout_s, provider
        self._good: dict[bytes, float] = {}

    async def check(self, cert: x509.Certificate, provider: str | None = None) -> None:
        provider = provider or self.provider
        fp = cert.sha256
        if self._good.get(fp, 0.0) > time.monotonic():
            return
        now = dt.datetime.now(dt.UTC)
        if cert.not_valid_after < now:
            raise ProviderRejected(provider, "certificate_expired",
                                   f"signer certificate expired on {cert.not_valid_after.isoformat()}")
        if cert.not_valid_before > now:
            raise ProviderRejected(provider, "certificate_expired", "signer certificate not yet valid")
        from pyhanko_certvalidator import CertificateValidator
        from pyhanko_certvalidator.errors import (
            ExpiredError,
            InsufficientRevinfoError,
            PathBuildingError,
            PathValidationError,
            RevokedError,
        )

        vc = validation_context(self.trust_roots, self.intermediates, fetching=True)
        try:
            validator = CertificateValidator(cert, intermediate_certs=self.intermediates, validation_context=vc)
            await validator.async_validate_usage({"non_repudiation"})
        except RevokedError as exc:
            raise ProviderRejected(provider, "certificate_revoked", "signer certificate is revoked") from exc
        except ExpiredError as exc:
            raise ProviderRejected(provider, "certificate_expired", str(exc)[:200]) from exc
        except InsufficientRevinfoError as exc:
            raise ProviderUnavailable(provider, f"revocation status unavailable: {str(exc)[:200]}") from exc
        except PathBuildingError as exc:
            raise ProviderRejected(provider, "certificate_untrusted", f"no path to a trust root: {exc}"[:200]) \
                from exc
        except PathValidationError as exc:
            raise ProviderRejected(provider, "certificate_untrusted", str(exc)[:200]) from exc
        finally:
            await close_context(vc)
        self._good[fp] = time.monotonic() + self.ttl_s
