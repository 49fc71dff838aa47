"""Amazon SNS HTTP(S) notifications (how SES reports bounces and complaints): signature verification.

The signing certificate must come from an SNS host (`sns.<region>.amazonaws.com`) over HTTPS; the
canonical string is the documented key/value list; SignatureVersion 1 is SHA1withRSA, 2 SHA256withRSA."""

from __future__ import annotations

import base64
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
CertLoader = Callable[[str], Awaitable[bytes]]


def sns_url(url: str) -> bool:
    """An https URL on an SNS host: no port, no user information (`https://x@sns...`, `:8443` refused)."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError:
        return False
    return (u.scheme == "https" and port is None and "@" not in u.netloc and u.netloc == u.hostname
            and bool(_SNS_HOST.match(u.hostname or "")))


def fresh(message: dict[str, Any], max_age_s: float, now: float | None = None) -> str | None:
    """None when the message's `Timestamp` is within `max_age_s` of now (either way); else why not."""
    try:
        stamp = datetime.fromisoformat(str(message.get("Timestamp", "")).replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            raise ValueError("no offset")
        age = (time.time() if now is None else now) - stamp.astimezone(UTC).timestamp()
    except (ValueError, OverflowError):
        return "Timestamp missing or not an ISO 8601 time"
    if abs(age) > max_age_s:
        return f"Timestamp {int(age)} s from now: outside the {int(max_age_s)}-second window"
    return None


def canonical(message: dict[str, Any]) -> bytes:
    fields = _FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise ValueError(f"unknown SNS message type {message.get('Type')!r}")
    return "".join(f"{k}\n{message[k]}\n" for k in fields if k in message).encode()


async def verify(message: dict[str, Any], load_cert: CertLoader) -> str | None:
    """None when authentic; else why not."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    cert_url = str(message.get("SigningCertURL", ""))
    if not sns_url(cert_url):
        return f"signing certificate not from an SNS host: {urlsplit(cert_url).hostname or cert_url!r}"
    version = str(message.get("SignatureVersion", ""))
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)
    if algorithm is None:
        return f"unsupported SignatureVersion {version!r}"
    try:
        signature = base64.b64decode(str(message["Signature"]))
        data = canonical(message)
        cert = x509.load_pem_x509_certificate(await load_cert(cert_url))
        cert.public_key().verify(signature, data, padding.PKCS1v15(), algorithm)  # type: ignore[union-attr,call-arg,arg-type]
    except InvalidSignature:
        return "signature does not match"
    except CertificateUnavailable as exc:
        return f"signing certificate unavailable: {exc}"
    except (KeyError, ValueError, TypeError) as exc:
        return f"malformed SNS message: {type(exc).__name__}"
    return None


class CertificateUnavailable(Exception):
    """The signing certificate could not be fetched (remembered for FAILURE_TTL_S: not re-fetched per request)."""


CACHE_MAX = 16  # SNS signs with a handful of certificates per region
FAILURE_TTL_S = 60.0
#: (host, path) -> certificate bytes, or the failure and when it expires; least recently used first
_cache: OrderedDict[tuple[str, str], bytes | tuple[str, float]] = OrderedDict()


async def _download(url: str) -> bytes:
    import aiohttp

    from shared.runtime.http import get_session

    async with get_session().get(url, timeout=aiohttp.ClientTimeout(total=5), allow_redirects=False) as resp:
        resp.raise_for_status()
        return await resp.content.read(100_000)  # a certificate is ~2 KB: never more than this


async def fetch_cert(url: str) -> bytes:
    """The certificate at `url`, fetched once per (host, path): a query string or fragment does not make a
    new certificate; the cache holds at most CACHE_MAX entries; a failed fetch raises CertificateUnavailable
    and is remembered for FAILURE_TTL_S."""
    u = urlsplit(url)
    key = (u.hostname or "", u.path)
    hit = _cache.get(key)
    if isinstance(hit, bytes):
        _cache.move_to_end(key)
        return hit
    if hit is not None and hit[1] > time.monotonic():
        raise CertificateUnavailable(hit[0])
    try:
        pem = await _download(f"https://{key[0]}{key[1]}")
    except Exception as exc:  # any failure is "unavailable", and remembered
        _remember(key, (type(exc).__name__, time.monotonic() + FAILURE_TTL_S))
        raise CertificateUnavailable(type(exc).__name__) from exc
    _remember(key, pem)
    return pem


def _remember(key: tuple[str, str], value: bytes | tuple[str, float]) -> None:
    _cache[key] = value
    _cache.move_to_end(key)
    while len(_cache) > CACHE_MAX:
        _cache.popitem(last=False)
