"""Passwords (scrypt), server-side sessions in Redis, CSRF tokens, and OpenID Connect login."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from console.settings import ConsoleSettings
from shared.storage.redis import Keys

COOKIE = "dvci_console"
PRE_COOKIE = "dvci_console_pre"  # the login form's CSRF token (double submit) before a session exists
_N, _R, _P = 2**15, 8, 1


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash` (base64): what DVCI_CONSOLE_ACCOUNTS keeps."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 * 1024 * 1024, dklen=len(base64.b64decode(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


_DUMMY = None


def check_account(settings: ConsoleSettings, name: str, password: str) -> str | None:
    """The account's role when the password matches; None otherwise (same work for unknown names)."""
    global _DUMMY
    acc = settings.accounts.get(name)
    if acc is None:
        _DUMMY = _DUMMY or hash_password(secrets.token_hex(8))
        verify_password(password, _DUMMY)
        return None
    return acc["role"] if verify_password(password, acc["password_hash"]) else None


@dataclass(slots=True)
class Session:
    token: str
    user: str
    role: str
    csrf: str
    via: str
    created: float

    @property
    def operator(self) -> bool:
        return self.role == "operator"


class Sessions:
    """Sessions in Redis under `{console}:session:<sha256(token)>`, expiring after idle time (sliding) and
    after an absolute lifetime; the cookie holds only the random token."""

    def __init__(self, redis: Any, keys: Keys, settings: ConsoleSettings):
        self.redis = redis
        self.keys = keys
        self.settings = settings

    def _key(self, token: str) -> str:
        return self.keys.key("console", "session", hashlib.sha256(token.encode()).hexdigest())

    async def create(self, user: str, role: str, via: str) -> Session:
        s = Session(secrets.token_urlsafe(32), user, role, secrets.token_urlsafe(24), via, time.time())
        await self.redis.set(self._key(s.token), orjson.dumps({"user": user, "role": role, "csrf": s.csrf, "via": via,
                                                               "created": s.created}),
                             ex=self.settings.session_ttl_s)
        return s

    async def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        key = self._key(token)
        raw = await self.redis.get(key)
        if raw is None:
            return None
        d = orjson.loads(raw)
        if time.time() - d["created"] > self.settings.session_max_s:
            await self.redis.delete(key)
            return None
        await self.redis.expire(key, self.settings.session_ttl_s)  # sliding idle expiry
        return Session(token, d["user"], d["role"], d["csrf"], d.get("via", "local"), d["created"])

    async def delete(self, token: str) -> None:
        await self.redis.delete(self._key(token))


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


# -- OpenID Connect (authorization code flow, client_secret_post) ------------------------------------
class OidcError(Exception):
    pass


class Oidc:
    """The authorization code flow against the province's SSO. The ID token comes straight from the token
    endpoint over TLS, so its issuer is validated by TLS (OIDC Core 3.1.3.7); iss, aud, exp and the nonce
    are checked; the role comes from `oidc_role_claim`."""

    def __init__(self, settings: ConsoleSettings, redis: Any, keys: Keys):
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self._meta: dict[str, Any] | None = None

    async def _http(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.request(
                method, url, timeout=aiohttp.ClientTimeout(total=10), **kw) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise OidcError(f"{url} answered {resp.status}")
            return orjson.loads(body)

    async def metadata(self) -> dict[str, Any]:
        if self._meta is None:
            issuer = str(self.settings.oidc_issuer).rstrip("/")
            self._meta = await self._http("GET", issuer + "/.well-known/openid-configuration")
        return self._meta

    async def authorize_url(self) -> str:
        meta = await self.metadata()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        await self.redis.set(self.keys.key("console", "oidc", state), nonce, ex=600)
        query = {"response_type": "code", "client_id": self.settings.oidc_client_id,
                 "redirect_uri": self.settings.oidc_redirect_uri, "scope": self.settings.oidc_scopes,
                 "state": state, "nonce": nonce}
        return meta["authorization_endpoint"] + "?" + urlencode(query)

    async def callback(self, code: str, state: str) -> tuple[str, str]:
        """(user, role) for the code; raises OidcError."""
        key = self.keys.key("console", "oidc", state)
        nonce = await self.redis.getdel(key)
        if not nonce:
            raise OidcError("unknown or expired state")
        meta = await self.metadata()
        tokens = await self._http("POST", meta["token_endpoint"], data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.oidc_redirect_uri,
            "client_id": self.settings.oidc_client_id, "client_secret": self.settings.oidc_client_secret or ""})
        claims = _jwt_claims(str(tokens.get("id_token", "")))
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if claims.get("iss") != meta.get("issuer") or self.settings.oidc_client_id not in auds:
            raise OidcError("ID token issued for another issuer or client")
        if float(claims.get("exp", 0)) < time.time():
            raise OidcError("ID token expired")
        if claims.get("nonce") != (nonce.decode() if isinstance(nonce, bytes) else nonce):
            raise OidcError("nonce mismatch")
        values = claims.get(self.settings.oidc_role_claim) or []
        values = [values] if isinstance(values, str) else list(values)
        if any(v in self.settings.oidc_operator_values for v in values):
            role = "operator"
        elif not self.settings.oidc_viewer_values or any(v in self.settings.oidc_viewer_values for v in values):
            role = "viewer"
        else:
            raise OidcError("not a member of the console's groups")
        user = str(claims.get(self.settings.oidc_name_claim) or claims.get("sub"))
        return user, role


def _jwt_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise OidcError("no ID token")
    try:
        return orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise OidcError("unreadable ID token") from exc
