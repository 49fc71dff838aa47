"""Amazon SNS HTTP(S) notifications (how SES reports bounces and complaints): signature verification.

The signing certificate must come from an SNS host (`sns.<region>.amazonaws.com`) over HTTPS; the
canonical string is the documented key/value list; SignatureVersion 1 is SHA1withRSA, 2 SHA256withRSA."""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
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
    u = urlsplit(url)
    return u.scheme == "https" and bool(_SNS_HOST.match(u.hostname or ""))


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
    except (KeyError, ValueError) as exc:
        return f"malformed SNS message: {exc}"
    return None


_cache: dict[str, bytes] = {}


async def fetch_cert(url: str) -> bytes:
    """Certificates are fetched once per process (only SNS hosts reach here)."""
    if url not in _cache:
        import aiohttp

        from shared.runtime.http import get_session

        async with get_session().get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            resp.raise_for_status()
            _cache[url] = await resp.read()
    return _cache[url]
