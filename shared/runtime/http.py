"""The process's outbound HTTP client: one aiohttp session per event loop, created after any fork.

aiohttp, not httpx's default pool, which collapses under concurrency (reference/knative.md).
"""

from __future__ import annotations

import asyncio

import aiohttp

_sessions: dict[int, aiohttp.ClientSession] = {}


def get_session() -> aiohttp.ClientSession:
    loop_id = id(asyncio.get_running_loop())
    session = _sessions.get(loop_id)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=128, ttl_dns_cache=300,
                                         enable_cleanup_closed=True)
        session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
        _sessions[loop_id] = session
    return session


async def close_sessions() -> None:
    for session in list(_sessions.values()):
        await session.close()
    _sessions.clear()
