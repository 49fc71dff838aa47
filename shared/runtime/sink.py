"""Emitting events produced outside a request (webhooks, cron) to `K_SINK`, applying `K_CE_OVERRIDES`."""

from __future__ import annotations

import logging

import orjson

from shared.runtime.errors import ProvidersUnavailable
from shared.runtime.events import CloudEvent, binary_headers
from shared.runtime.settings import RuntimeSettings, runtime_settings

log = logging.getLogger(__name__)


class SinkNotConfigured(ProvidersUnavailable):
    title = "K_SINK not configured"


def apply_overrides(event: CloudEvent, overrides: str | None) -> CloudEvent:
    """Apply `K_CE_OVERRIDES` (`{"extensions": {...}}`) to an outgoing event."""
    if overrides:
        ext = orjson.loads(overrides).get("extensions") or {}
        event.extensions.update({str(k): str(v) for k, v in ext.items()})
    return event


async def emit(event: CloudEvent, settings: RuntimeSettings | None = None) -> int:
    """POST `event` in binary mode to K_SINK; returns the status. Raises when it was not accepted."""
    import aiohttp  # not on the cold-start path: only functions that emit outside a request need it

    from shared.runtime.http import get_session

    settings = settings or runtime_settings()
    if not settings.k_sink:
        raise SinkNotConfigured(f"cannot emit {event.type}: K_SINK is not set (no SinkBinding?)")
    apply_overrides(event, settings.k_ce_overrides)
    try:
        async with get_session().post(settings.k_sink, data=event.data_bytes(), headers=binary_headers(event),
                                      timeout=aiohttp.ClientTimeout(total=5)) as resp:
            if resp.status >= 300:
                raise ProvidersUnavailable(f"K_SINK answered {resp.status} for {event.type}")
            return resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProvidersUnavailable(f"K_SINK unreachable for {event.type}: {exc!r}") from exc
