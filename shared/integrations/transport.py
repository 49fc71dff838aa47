"""One outbound provider request over the shared aiohttp session, with failures classified.

Connection refused / connect timeout / 429 / 503 -> ProviderUnavailable (the request took no effect);
read timeout, reset, truncated body, other 5xx -> ProviderAmbiguous (it may have taken effect).
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from shared.integrations.errors import ProviderAmbiguous, ProviderUnavailable
from shared.runtime.http import get_session

UNAVAILABLE_STATUSES = frozenset((408, 429, 503))


async def request(provider: str, method: str, url: str, *, body: bytes | None = None,
                  headers: Mapping[str, str] | None = None, timeout_s: float = 3.0,
                  connect_timeout_s: float = 1.0) -> tuple[int, bytes]:
    """Status and body of one call; raises ProviderUnavailable or ProviderAmbiguous on failure."""
    timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
    try:
        async with get_session().request(method, url, data=body, headers=headers, timeout=timeout) as resp:
            payload = await resp.read()
            status = resp.status
    except aiohttp.ClientConnectorError as exc:
        raise ProviderUnavailable(provider, f"cannot connect: {exc.os_error!r}") from exc
    except aiohttp.ConnectionTimeoutError as exc:
        raise ProviderUnavailable(provider, "connect timeout") from exc
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise ProviderAmbiguous(provider, f"no answer within {timeout_s}s after sending") from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
        raise ProviderAmbiguous(provider, f"connection lost after sending: {type(exc).__name__}") from exc
    except aiohttp.ClientError as exc:
        raise ProviderAmbiguous(provider, f"HTTP client error: {type(exc).__name__}") from exc
    if status in UNAVAILABLE_STATUSES:
        raise ProviderUnavailable(provider, f"HTTP {status}")
    return status, payload
