"""Readiness probe of the state store."""

from __future__ import annotations

import asyncio

from shared.storage.redis import get_redis


async def redis_ready() -> None:
    """Raise unless Redis answers PING within a second."""
    try:
        await asyncio.wait_for(get_redis().ping(), timeout=1.0)
    except Exception as exc:
        raise RuntimeError(f"Redis unreachable: {type(exc).__name__}") from exc
