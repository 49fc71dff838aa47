"""A lean HTTP/1.1 keep-alive client for provider calls on the hot path.

aiohttp costs ~350 µs of CPU per call here; a provider call is one small request and one small answer
on a kept-alive connection, which this client does for a fraction of that: a connection pool per
origin, httptools' response parser, one timer per request. Errors say what is known about the request:
`ConnectFailed` (it never left), `RequestTimeout` and `ConnectionLost` (it may have arrived).

Egress as government networks run it, decided once per origin when its first connection opens (a request
to an origin already seen costs what it did before: no proxy or TLS work on the hot path):
- Proxy from `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (either case, read when the client is created;
  `NO_PROXY` as urllib reads it: host names, domain suffixes, `*`). https origins go through a CONNECT
  tunnel (TLS end to end with the provider); http origins are sent to the proxy in absolute form
  (`POST http://host/path`), which every forward proxy accepts (many refuse CONNECT to ports other than
  443). Only `http://` proxy URLs; `user:password@` in the proxy URL becomes `proxy-authorization: Basic`.
- `TlsConfig(ca_file, cert_file, key_file)` per request (transport passes the provider's): the CA bundle
  to trust instead of the system's, and a client certificate for gateways that require mutual TLS. It is
  part of the pool key, so two configurations never share a connection. `tls_for(kind, provider)` reads
  `DVCI_<KIND>_<PROVIDER>_TLS_{CA_FILE,CERT_FILE,KEY_FILE,KEY_PASSWORD}` once per provider.
A TLS alert refusing our certificate on a fresh connection (TLS 1.3 sends it after the handshake, when the
request is already written) is `ConnectFailed`: the server refused the session, the request had no effect.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

import httptools
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class HttpError(Exception):
    pass


class ConnectFailed(HttpError):
    """No connection could be made: the request was not sent."""


class RequestTimeout(HttpError):
    """No complete answer in time after the request was sent."""


class ConnectionLost(HttpError):
    """The connection closed before a complete answer, after the request was sent."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS towards one provider: the CA bundle to trust (instead of the system's) and a client certificate."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None  # None: the key is in cert_file
    key_password: str | None = field(default=None, repr=False)

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file, self.key_password)
        return ctx


class TlsSettings(BaseSettings):
    """`<prefix>TLS_CA_FILE`, `<prefix>TLS_CERT_FILE`, `<prefix>TLS_KEY_FILE`, `<prefix>TLS_KEY_PASSWORD`."""

    model_config = SettingsConfigDict(extra="ignore")

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: SecretStr | None = None

    @classmethod
    def for_prefix(cls, prefix: str) -> TlsSettings:
        return cls(_env_prefix=f"{prefix}TLS_")  # type: ignore[call-arg]

    def config(self) -> TlsConfig | None:
        if not (self.ca_file or self.cert_file):
            return None
        return TlsConfig(self.ca_file, self.cert_file, self.key_file,
                         self.key_password.get_secret_value() if self.key_password else None)


@lru_cache(maxsize=256)
def tls_for(kind: str, provider: str) -> TlsConfig | None:
    """The provider's TLS settings (`DVCI_<KIND>_<PROVIDER>_TLS_*`), None when it has none; read once."""
    return TlsSettings.for_prefix(f"DVCI_{kind.upper()}_{provider.upper().replace('-', '_')}_").config()


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # the proxy-authorization header value

    @classmethod
    def parse(cls, url: str) -> Proxy:
        u = urlsplit(url if "://" in url else f"http://{url}")
        if u.scheme != "http":
            raise ValueError(f"proxy URL scheme {u.scheme!r} not supported (only http:// proxies)")
        auth = None
        if u.username is not None:
            raw = f"{unquote(u.username)}:{unquote(u.password or '')}".encode()
            auth = "Basic " + base64.b64encode(raw).decode()
        return cls(u.hostname or "127.0.0.1", u.port or 80, auth)


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Which proxy, if any, serves an origin: `ProxySettings.from_env()` reads HTTP(S)_PROXY and NO_PROXY."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProxySettings:
        if environ is None:
            found = getproxies_environment()
        else:
            found = {}
            for name, value in environ.items():  # as urllib: lower case wins over upper case
                key = name.lower()
                if value and key.endswith("_proxy") and (name == key or key not in environ):
                    found[key[:-6]] = value
        return cls(Proxy.parse(found["http"]) if found.get("http") else None,
                   Proxy.parse(found["https"]) if found.get("https") else None, found.get("no", ""))

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self.https if scheme == "https" else self.http
        if proxy is None:
            return None
        if self.no_proxy and proxy_bypass_environment(f"{host}:{port}", {"no": self.no_proxy}):
            return None
        return proxy


@dataclass(slots=True)
class _Route:
    """How requests to one (scheme, host, port, tls) reach it, and its idle connections."""

    host: str  # the origin's host (TLS server name)
    port: int
    ssl: ssl.SSLContext | None
    proxy: Proxy | None
    tunnel: bool  # CONNECT through the proxy (https); else absolute-form to the proxy (http)
    target_prefix: str = ""  # "http://host:port" in absolute form
    extra_head: str = ""  # proxy-authorization in absolute form
    idle: list[_Conn] = field(default_factory=list)


_CERT_REFUSED = frozenset(("TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE",
                           "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "SSLV3_ALERT_HANDSHAKE_FAILURE",
                           "TLSV1_ALERT_UNKNOWN_CA", "TLSV1_ALERT_ACCESS_DENIED", "TLSV1_ALERT_DECRYPT_ERROR",
                           "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_EXPIRED",
                           "SSLV3_ALERT_CERTIFICATE_REVOKED"))


class _Tunnel(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT (its head only; the tunnel then belongs to a _Conn)."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.head = bytearray()
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.head += data
        if b"\r\n\r\n" in self.head and not self.done.done():
            self.transport.pause_reading()
            self.done.set_result(bytes(self.head))
        elif len(self.head) > 65536 and not self.done.done():
            self.done.set_exception(ConnectFailed("proxy answer to CONNECT too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectFailed(f"proxy closed the connection during CONNECT ({exc!r})"))


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.body: list[bytes] = []
        self.lost = False
        self.fresh = True  # no answer received on it yet

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionLost(f"unparseable HTTP answer: {exc}"))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.fresh and isinstance(exc, ssl.SSLError) and exc.reason in _CERT_REFUSED:
            self._fail(ConnectFailed(f"TLS session refused by the server: {exc.reason}"))
            return
        self._fail(ConnectionLost(f"connection closed before the answer ({exc!r})"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.fresh = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.body),
                                    self.parser.should_keep_alive()))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


class HttpClient:
    """`status, body = await client.request("POST", url, body=..., headers=..., timeout_s=..., tls=...)`."""

    def __init__(self, *, max_idle_per_origin: int = 128, proxies: ProxySettings | None = None):
        self._routes: dict[tuple[str, str, int, TlsConfig | None], _Route] = {}
        self.max_idle = max_idle_per_origin
        self.proxies = proxies if proxies is not None else ProxySettings.from_env()
        self._ssl: dict[TlsConfig | None, ssl.SSLContext] = {}

    def _route(self, key: tuple[str, str, int, TlsConfig | None]) -> _Route:
        scheme, host, port, tls = key
        ctx = None
        if scheme == "https":
            ctx = self._ssl.get(tls)
            if ctx is None:
                ctx = self._ssl[tls] = tls.context() if tls is not None else ssl.create_default_context()
        proxy = self.proxies.for_origin(scheme, host, port)
        route = _Route(host, port, ctx, proxy, tunnel=proxy is not None and scheme == "https")
        if proxy is not None and not route.tunnel:
            default = 443 if scheme == "https" else 80
            netloc = f"[{host}]" if ":" in host else host
            route.target_prefix = f"{scheme}://{netloc}" + ("" if port == default else f":{port}")
            if proxy.authorization:
                route.extra_head = f"proxy-authorization: {proxy.authorization}\r\n"
        self._routes[key] = route
        return route

    async def _connect(self, route: _Route, timeout_s: float) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            if route.proxy is None:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(_Conn, route.host, route.port, ssl=route.ssl), timeout_s)
            elif not route.tunnel:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(_Conn, route.proxy.host, route.proxy.port), timeout_s)
            else:
                conn = await asyncio.wait_for(self._tunnel(route), timeout_s)
        except (OSError, TimeoutError) as exc:
            via = f" via proxy {route.proxy.host}:{route.proxy.port}" if route.proxy else ""
            raise ConnectFailed(f"cannot connect to {route.host}:{route.port}{via}: {exc!r}") from exc
        return conn

    async def _tunnel(self, route: _Route) -> _Conn:
        """A CONNECT tunnel through the proxy, then TLS with the origin inside it."""
        assert route.proxy is not None
        loop = asyncio.get_running_loop()
        transport, tunnel = await loop.create_connection(_Tunnel, route.proxy.host, route.proxy.port)
        try:
            authority = f"[{route.host}]:{route.port}" if ":" in route.host else f"{route.host}:{route.port}"
            auth = f"proxy-authorization: {route.proxy.authorization}\r\n" if route.proxy.authorization else ""
            transport.write(f"CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n{auth}\r\n".encode("latin-1"))
            head = await tunnel.done
            status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or parts[1] != "200":
                raise ConnectFailed(f"proxy refused CONNECT to {authority}: {status_line[:100]}")
            if head.index(b"\r\n\r\n") + 4 != len(head):
                raise ConnectFailed("proxy sent data after its CONNECT answer")
            conn = _Conn()
            if route.ssl is not None:
                transport.resume_reading()
                tls_transport = await loop.start_tls(transport, conn, route.ssl, server_hostname=route.host)
                if tls_transport is None:
                    raise ConnectFailed("TLS through the tunnel could not start")
                transport = tls_transport
            else:
                transport.set_protocol(conn)
                transport.resume_reading()
        except BaseException:
            transport.close()
            raise
        conn.connection_made(transport)
        return conn

    async def request(self, method: str, url: str, *, body: bytes = b"", headers: Mapping[str, str] | None = None,
                      timeout_s: float = 3.0, connect_timeout_s: float = 1.0,
                      tls: TlsConfig | None = None) -> tuple[int, bytes]:
        u = urlsplit(url)
        scheme, host = u.scheme, u.hostname or "127.0.0.1"
        key = (scheme, host, u.port or (443 if scheme == "https" else 80), tls)
        route = self._routes.get(key) or self._route(key)
        idle = route.idle
        conn = None
        while idle:
            candidate = idle.pop()
            if not candidate.lost:
                conn = candidate
                break
        if conn is None:
            conn = await self._connect(route, connect_timeout_s)
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        head = [f"{method} {route.target_prefix}{target} HTTP/1.1\r\nhost: {u.netloc}\r\n"
                f"content-length: {len(body)}\r\n{route.extra_head}"]
        if headers:
            head.extend(f"{k}: {v}\r\n" for k, v in headers.items())
        head.append("\r\n")
        loop = asyncio.get_running_loop()
        conn.waiter = loop.create_future()
        conn.body = []
        conn.transport.write("".join(head).encode("latin-1") + body)
        timer = loop.call_later(timeout_s, conn._fail, RequestTimeout(f"no answer within {timeout_s}s"))
        try:
            status, payload, keep_alive = await conn.waiter
        except HttpError:
            conn.transport.close()
            raise
        finally:
            timer.cancel()
        if keep_alive and not conn.lost and len(idle) < self.max_idle:
            conn.parser = httptools.HttpResponseParser(conn)
            conn.waiter = None
            idle.append(conn)
        else:
            conn.transport.close()
        return status, payload

    def close(self) -> None:
        for route in self._routes.values():
            for c in route.idle:
                c.transport.close()
        self._routes.clear()


_clients: dict[int, HttpClient] = {}


def get_client() -> HttpClient:
    """The process's client for the running event loop."""
    loop_id = id(asyncio.get_running_loop())
    client = _clients.get(loop_id)
    if client is None:
        client = _clients[loop_id] = HttpClient()
    return client


def close_clients() -> None:
    for c in _clients.values():
        c.close()
    _clients.clear()
