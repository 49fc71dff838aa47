"""One outbound provider request, with failures classified for failover (docs/architecture.md).

Connection refused / connect timeout / 408 / 429 / 503 -> ProviderUnavailable (the request took no
effect); read timeout, connection lost, unparseable answer -> ProviderAmbiguous (it may have).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from shared.integrations.httpclient import ConnectFailed, ConnectionLost, RequestTimeout, TlsConfig, get_client, tls_for
from shared.observability import metrics, tracing
from shared.reliability.errors import ProviderAmbiguous, ProviderUnavailable

UNAVAILABLE_STATUSES = frozenset((408, 429, 503))


async def request(provider: str, method: str, url: str, *, body: bytes | None = None,
                  headers: Mapping[str, str] | None = None, timeout_s: float = 3.0,
                  connect_timeout_s: float = 1.0, kind: str = "sms", tls: TlsConfig | None = None) -> tuple[int, bytes]:
    """Status and body of one call; raises ProviderUnavailable or ProviderAmbiguous on failure.

    `tls`: the CA bundle / client certificate for this provider; by default `DVCI_<KIND>_<PROVIDER>_TLS_*`.
    Proxies (HTTPS_PROXY / HTTP_PROXY / NO_PROXY) apply to every call: see httpclient."""
    started = time.perf_counter()
    tls = tls or tls_for(kind, provider)
    try:
        if not tracing.enabled():
            return await _request(provider, method, url, body, headers, timeout_s, connect_timeout_s, tls)
        u = urlsplit(url)
        with tracing.span(f"{method} {provider}", kind="client", **{
                "http.request.method": method, "server.address": u.hostname or "", "server.port": u.port or 0,
                "url.path": u.path, "dvci.provider": provider, "dvci.kind": kind}) as s:
            status, payload = await _request(provider, method, url, body, headers, timeout_s, connect_timeout_s,
                                             tls)
            s.set_attribute("http.response.status_code", status)
            return status, payload
    finally:
        if metrics.ENABLED:
            metrics.PROVIDER_DURATION.labels(kind, provider).observe(time.perf_counter() - started)


async def _request(provider: str, method: str, url: str, body: bytes | None, headers: Mapping[str, str] | None,
                   timeout_s: float, connect_timeout_s: float, tls: TlsConfig | None = None) -> tuple[int, bytes]:
    try:
        status, payload = await get_client().request(method, url, body=body or b"", headers=headers,
                                                      timeout_s=timeout_s, connect_timeout_s=connect_timeout_s,
                                                      tls=tls)
    except ConnectFailed as exc:
        raise ProviderUnavailable(provider, str(exc)) from exc
    except RequestTimeout as exc:
        raise ProviderAmbiguous(provider, f"no answer within {timeout_s}s after sending") from exc
    except ConnectionLost as exc:
        raise ProviderAmbiguous(provider, f"connection lost after sending: {exc}") from exc
    if status in UNAVAILABLE_STATUSES:
        raise ProviderUnavailable(provider, f"HTTP {status}")
    return status, payload
