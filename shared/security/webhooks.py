"""Verifying inbound webhooks (delivery receipts, carrier tracking pushes, signing callbacks).

    auth = WebhookAuth(secret="...", allow_ips=["10.0.0.0/8"])
    body = await read_verified(request, auth)        # WebhookRefused -> refused_response(exc)

Schemes are plug-ins (`register_scheme`): `hmac-sha256` (`x-dvci-signature: t=<unix>,v1=<hex>` over
`t.` + body, within a timestamp window) and `token` (a shared secret in a header, compared in constant
time: the scheme of carriers that only offer a static token). A source-IP allow-list admits a caller
without a signature. The body is read up to `max_body` bytes: larger is 413 before any parsing.
Sandboxes sign with `signed_headers`, the same code.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from shared.runtime import bodies

Verifier = Callable[["WebhookAuth", Mapping[str, str], bytes, float], str | None]
Signer = Callable[["WebhookAuth", bytes, float], dict[str, str]]


@dataclass(frozen=True, slots=True)
class WebhookAuth:
    """How one provider's webhooks are authenticated. `secret` None and no allow-list refuses everything."""

    secret: str | None = None
    scheme: str = "hmac-sha256"
    allow_ips: tuple[str, ...] = ()
    header: str = "x-dvci-signature"
    tolerance_s: int = 300
    max_body: int = 256 * 1024
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        nets = tuple(ipaddress.ip_network(n.strip(), strict=False) for n in self.allow_ips if n.strip())
        object.__setattr__(self, "networks", nets)


class WebhookRefused(Exception):
    """The request is not authentic (401) or too large (413); `reason` says why (safe to log)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def ips(text: str) -> tuple[str, ...]:
    """A comma-separated CIDR list from settings."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


# -- schemes -------------------------------------------------------------------------------------------
def _hmac_hex(secret: str, ts: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()


def _verify_hmac(auth: WebhookAuth, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
    header = headers.get(auth.header)
    if not header:
        return f"missing {auth.header}"
    try:
        parts = [p.split("=", 1) for p in header.split(",")]
        ts = int(next(v for k, v in parts if k.strip() == "t"))
    except (ValueError, StopIteration):
        return f"malformed {auth.header}"
    if abs(now - ts) > auth.tolerance_s:
        return f"signature timestamp outside the {auth.tolerance_s}-second window"
    expected = _hmac_hex(auth.secret or "", ts, body)
    if not any(k.strip().startswith("v1") and hmac.compare_digest(expected, v.strip()) for k, v in parts):
        return "signature does not match"
    return None


def _sign_hmac(auth: WebhookAuth, body: bytes, now: float) -> dict[str, str]:
    ts = int(now)
    return {auth.header: f"t={ts},v1={_hmac_hex(auth.secret or '', ts, body)}"}


def _verify_token(auth: WebhookAuth, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
    given = headers.get(auth.header)
    if not given:
        return f"missing {auth.header}"
    if not hmac.compare_digest(given.encode(), (auth.secret or "").encode()):
        return f"{auth.header} does not match"
    return None


def _sign_token(auth: WebhookAuth, body: bytes, now: float) -> dict[str, str]:
    return {auth.header: auth.secret or ""}


_SCHEMES: dict[str, tuple[Verifier, Signer]] = {
    "hmac-sha256": (_verify_hmac, _sign_hmac),
    "token": (_verify_token, _sign_token),
}


def register_scheme(name: str, verify: Verifier, sign: Signer) -> None:
    """Add a provider-specific scheme (its verifier returns None when authentic, else the reason)."""
    _SCHEMES[name] = (verify, sign)


# -- the API -------------------------------------------------------------------------------------------
def verify(auth: WebhookAuth, headers: Mapping[str, str], body: bytes, client_ip: str | None,
           now: float | None = None) -> str | None:
    """None when the request is authentic; else the reason it is refused."""
    if auth.networks and client_ip:
        try:
            addr = ipaddress.ip_address(client_ip)
        except ValueError:
            addr = None
        if addr is not None and any(addr in net for net in auth.networks):
            return None
    if not auth.secret:
        return "no webhook secret configured and the caller is not allow-listed"
    scheme = _SCHEMES.get(auth.scheme)
    if scheme is None:
        return f"unknown webhook scheme {auth.scheme!r}"
    return scheme[0](auth, headers, body, time.time() if now is None else now)


def signed_headers(auth: WebhookAuth, body: bytes, now: float | None = None) -> dict[str, str]:
    """The headers that authenticate `body` under `auth` (what a provider, or a sandbox, sends)."""
    return _SCHEMES[auth.scheme][1](auth, body, time.time() if now is None else now)


async def read_body(request: Request, max_body: int) -> bytes:
    """The request body, refusing (413) past `max_body` bytes without reading the rest."""
    try:
        return await bodies.read_body(request, max_body)
    except bodies.BodyTooLarge as exc:
        raise WebhookRefused(413, exc.reason) from exc


async def read_verified(request: Request, auth: WebhookAuth) -> bytes:
    """The body of an authentic request; WebhookRefused (401/413) otherwise."""
    body = await read_body(request, auth.max_body)
    headers = {k.lower(): v for k, v in request.headers.items()}
    refused = verify(auth, headers, body, request.client.host if request.client else None)
    if refused:
        raise WebhookRefused(401, refused)
    return body


def refused_response(exc: WebhookRefused, what: str = "webhook") -> Response:
    from shared.runtime.problem import problem_response

    if exc.status == 413:
        return bodies.too_large_response(bodies.BodyTooLarge(exc.reason), what)
    return problem_response(401, f"Unauthenticated {what}", exc.reason, type_uri="urn:dvci:problem:unauthenticated")
