"""The hot-path client for a Redis Cluster: `redis+cluster://[user:pass@]host:port[,host:port...]/0`
(`rediss+cluster://` for TLS). Same interface as `RespClient` (`execute`, `evalsha`, `close`), plus
`cluster = True`, `key_slot(key)` and `same_node(*keys)` for callers that split work by slot.

Routing: CRC16 of the key's hash tag (`binascii.crc_hqx`, the XMODEM CRC Redis uses) modulo 16384 -> the
master serving that slot, from `CLUSTER SLOTS` (read at the first call and again after any redirect or
lost connection); one multiplexed `RespClient` connection per master. `MOVED` updates the slot and retries
at the new owner (the map is refreshed in the background); `ASK` (a slot being migrated) sends `ASKING` +
the command to the importing node, once, without touching the map. A lost connection fails the callers
fast (the reliability pipeline answers 503, the broker retries) and refreshes the map, so a replica
promoted by a failover takes over at the next call."""

from __future__ import annotations

import asyncio
import logging
from binascii import crc_hqx
from typing import Any
from urllib.parse import unquote, urlsplit

from shared.storage.resp import RespClient, RespConnectionError, RespError

log = logging.getLogger(__name__)
SLOTS = 16384
_MAX_REDIRECTS = 5


def is_cluster_url(url: str | None) -> bool:
    return bool(url) and url.split("://", 1)[0] in ("redis+cluster", "rediss+cluster")  # type: ignore[union-attr]


def hash_tag(key: str | bytes) -> bytes:
    k = key.encode() if isinstance(key, str) else key
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            return k[start + 1:end]
    return k


def key_slot(key: str | bytes) -> int:
    """The cluster slot of `key` (what `CLUSTER KEYSLOT` answers)."""
    return crc_hqx(hash_tag(key), 0) % SLOTS


def seeds(url: str) -> tuple[str, list[tuple[str, int]], str]:
    """(scheme of the node URLs, [(host, port)], 'user:pass@' or '') of a cluster URL."""
    scheme = "rediss" if url.startswith("rediss+cluster://") else "redis"
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    auth = ""
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        auth += "@"
    nodes = []
    for part in netloc.split(","):
        host, _, port = part.rpartition(":")
        nodes.append((host.strip("[]") or "127.0.0.1", int(port or 6379)))
    return scheme, nodes, auth


class ClusterClient:
    cluster = True

    def __init__(self, url: str, *, timeout_s: float = 2.0):
        self.url = url
        self.timeout_s = timeout_s
        self._scheme, self._seeds, self._auth = seeds(url)
        if urlsplit(url.replace("+cluster", "", 1)).path.strip("/") not in ("", "0"):
            raise ValueError("Redis Cluster has only database 0")
        self._nodes: dict[str, RespClient] = {}
        self._slots: list[str] = []
        self._refresh_task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self.redirects = 0
        self.refreshes = 0

    # -- topology ------------------------------------------------------------------------------
    def node(self, addr: str) -> RespClient:
        client = self._nodes.get(addr)
        if client is None:
            host, _, port = addr.rpartition(":")
            client = self._nodes[addr] = RespClient(f"{self._scheme}://{self._auth}{host}:{port}/0",
                                                    timeout_s=self.timeout_s)
        return client

    async def refresh(self, *, force: bool = True) -> None:
        """Read the slot map (CLUSTER SLOTS) from the first node that answers: known masters, then seeds.
        `force=False`: only when there is none yet (concurrent first calls read it once)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._slots and not force:
                return
            candidates = list(dict.fromkeys([*self._nodes, *(f"{h}:{p}" for h, p in self._seeds)]))
            last: Exception | None = None
            for addr in candidates:
                try:
                    reply = await self.node(addr).execute("CLUSTER", "SLOTS")
                except (RespError, OSError, TimeoutError) as exc:
                    last = exc
                    continue
                table = [""] * SLOTS
                for first, last_slot, master, *_replicas in reply:
                    host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
                    owner = f"{host or addr.rpartition(':')[0]}:{int(master[1])}"
                    for slot in range(int(first), int(last_slot) + 1):
                        table[slot] = owner
                self._slots = table
                self.refreshes += 1
                for gone in set(self._nodes) - set(table) - {f"{h}:{p}" for h, p in self._seeds}:
                    await self._nodes.pop(gone).close()
                return
            raise RespConnectionError(f"no Redis Cluster node answered CLUSTER SLOTS: {last!r}")

    def _refresh_soon(self) -> None:
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.get_running_loop().create_task(self._quiet_refresh())

    async def _quiet_refresh(self) -> None:
        try:
            await self.refresh()
        except Exception:  # the next call fails fast and tries again
            log.debug("cluster slot map refresh failed", exc_info=True)

    def key_slot(self, key: str | bytes) -> int:
        return key_slot(key)

    def owner(self, key: str | bytes) -> str:
        """The master serving `key` (from the current map; "" before the first call)."""
        return self._slots[key_slot(key)] if self._slots else ""

    def same_node(self, *keys: str | bytes) -> bool:
        owners = {self.owner(k) for k in keys}
        return len(owners) == 1 and "" not in owners

    # -- commands ------------------------------------------------------------------------------
    async def _call(self, slot: int | None, send: Any, asking: Any) -> Any:
        if not self._slots:
            await self.refresh(force=False)
        addr = self._slots[slot] if slot is not None else next(iter(self._nodes), "") or self._slots[0]
        for _ in range(_MAX_REDIRECTS):
            client = self.node(addr)
            try:
                return await send(client)
            except RespError as exc:
                kind, _, rest = str(exc).partition(" ")
                if kind not in ("MOVED", "ASK"):
                    raise
                self.redirects += 1
                target = rest.split(" ", 1)[1].strip()
                if kind == "ASK":  # one command at the importing node; the map stays as it is
                    return await asking(self.node(target))
                if slot is not None:
                    self._slots[int(rest.split(" ", 1)[0])] = target
                addr = target
                self._refresh_soon()
            except (RespConnectionError, TimeoutError, OSError):
                self._refresh_soon()  # a failover may have promoted a replica
                raise
        raise RespError(f"TRYAGAIN too many cluster redirects for slot {slot}")

    async def execute(self, *args: bytes | str | int | float) -> Any:
        """A command whose first argument after the name is its key (GET, SET, HSET, XADD...); keyless
        commands (PING) go to any master."""
        slot = key_slot(args[1] if isinstance(args[1], bytes) else str(args[1])) if len(args) > 1 else None
        return await self._call(slot, lambda c: c.execute(*args), lambda c: c.execute_asking(*args))

    async def evalsha(self, script: str, keys: list[str], args: list[bytes | str]) -> Any:
        """EVALSHA at the master of `keys` (which must share one slot), loading the script where missing."""
        slot = key_slot(keys[0]) if keys else None
        return await self._call(slot, lambda c: c.evalsha(script, keys, args),
                                lambda c: c.execute_asking("EVAL", script, len(keys), *keys, *args))

    async def close(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        for client in self._nodes.values():
            await client.close()
        self._nodes.clear()
        self._slots = []


def plain_url(url: str) -> str:
    """The first seed as a plain `redis://` URL (for redis-py's RedisCluster.from_url)."""
    scheme, nodes, auth = seeds(url)
    host, port = nodes[0]
    return f"{scheme}://{auth}{'[' + host + ']' if ':' in host else host}:{port}/0"


def startup_nodes(url: str) -> list[tuple[str, int]]:
    return [(unquote(h), p) for h, p in seeds(url)[1]]
