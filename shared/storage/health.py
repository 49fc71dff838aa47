"""Readiness probe of the state store."""

from __future__ import annotations

import asyncio

from shared.storage.redis import get_fast_redis


async def redis_ready() -> None:
    """Raise unless Redis answers PING within a second."""
    try:
        await asyncio.wait_for(get_fast_redis().execute("PING"), timeout=1.0)
    except Exception as exc:
        raise RuntimeError(f"Redis unreachable: {type(exc).__name__}") from exc
