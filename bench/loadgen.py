"""The load generator (its own process): binary-mode CloudEvents, each with a unique id and a realistic
Vietnamese text. Closed loop (fixed concurrency) or open loop (fixed arrival rate, latency measured from
the scheduled send time, so coordinated omission does not hide queueing). Prints one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time
import uuid
from urllib.parse import urlsplit

import aiohttp
import orjson

TYPE = "vn.gov.dvc.sms.send.requested"
TEXTS = [
    "Ho so {d} cua ong/ba da duoc tiep nhan ngay 27/11/2026. Tra cuu tai dichvucong.gov.vn",
    "Hồ sơ {d} đã có kết quả. Mời ông/bà nhận kết quả tại Bộ phận Một cửa UBND tỉnh.",
    "Ho so {d} can bo sung: ban sao CCCD, giay xac nhan cu tru. Han bo sung: 05/12/2026.",
    "Kết quả hồ sơ {d} đã được gửi qua bưu chính công ích, mã vận đơn EB123456789VN.",
]
PREFIXES = ["091", "094", "096", "097", "098", "090", "093", "088", "086", "032", "070", "081"]


def make(i: int, rng: random.Random) -> tuple[dict[str, str], bytes]:
    dossier = f"000.00.01.H29-261127-{i:06d}"
    data = {"to": rng.choice(PREFIXES) + f"{rng.randrange(10**7):07d}", "text": rng.choice(TEXTS).format(d=dossier),
            "dossier_id": dossier}
    headers = {"ce-specversion": "1.0", "ce-id": str(uuid.uuid4()), "ce-source": "/dvc/core/bench",
               "ce-type": TYPE, "ce-dossierid": dossier, "content-type": "application/json"}
    return headers, orjson.dumps(data)


class Conn:
    """One keep-alive HTTP/1.1 connection: a raw request out, status + ce-type + body back. Cheap enough
    that one generator process can drive several thousand requests per second."""

    def __init__(self, host: str, port: int, path: str):
        self.host, self.port, self.path = host, port, path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"POST {self.path} HTTP/1.1\r\nhost: {self.host}\r\n{head}content-length: {len(body)}"
                          f"\r\n\r\n".encode() + body)
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, ce_type, close = 0, "", False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.lower()
            if name == "content-length":
                length = int(value)
            elif name == "ce-type":
                ce_type = value.strip()
            elif name == "connection" and "close" in value.lower():
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.writer.close()
            self.writer = None
        return status, ce_type


async def one_raw(conn: Conn, headers: dict[str, str], body: bytes, stats: dict) -> None:
    t0 = time.perf_counter()
    try:
        status, rtype = await conn.post(headers, body)
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        status, rtype = 0, ""
        conn.writer = None
    stats["lat"].append(time.perf_counter() - t0)
    key = "ok" if status == 200 and (rtype.endswith(".accepted") or stats["any200"]) else \
        f"s{status}:{rtype.rsplit('.', 1)[-1]}"
    stats[key] = stats.get(key, 0) + 1


async def closed_loop(url: str, concurrency: int, duration: float, warmup: float, any200: bool) -> dict:
    rng = random.Random()
    stats: dict = {"lat": [], "any200": any200}
    parts = urlsplit(url)
    counter = iter(range(10**9))
    end_warm = time.perf_counter() + warmup
    warm: dict = {"lat": [], "any200": any200}
    until = end_warm + duration

    async def worker() -> None:
        conn = Conn(parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/")
        while time.perf_counter() < until:
            h, b = make(next(counter), rng)
            await one_raw(conn, h, b, stats if time.perf_counter() >= end_warm else warm)
        if conn.writer:
            conn.writer.close()

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    lat = sorted(stats.pop("lat"))
    stats.pop("any200")
    n = len(lat)
    return {"mode": "closed", "concurrency": concurrency, "duration_s": duration, "answered": n,
            "rate": n / duration, "outcomes": stats, "warmup_answered": len(warm["lat"]),
            "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99), "loadgen_cpu_pct": 100 * cpu / elapsed}


async def open_loop(url: str, rate: float, duration: float, any200: bool) -> dict:
    rng = random.Random()
    stats: dict = {"lat": [], "any200": any200}
    conn = aiohttp.TCPConnector(limit=2000)
    lat: list[float] = []
    async with aiohttp.ClientSession(connector=conn) as session:
        tasks = []
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter() + 0.2
        total = int(rate * duration)

        async def fire(i: int, scheduled: float) -> None:
            h, b = make(i, rng)
            try:
                async with session.post(url, data=b, headers=h) as r:
                    await r.read()
                    ok = r.status == 200
            except aiohttp.ClientError:
                ok = False
            lat.append(time.perf_counter() - scheduled)  # from the scheduled time: no coordinated omission
            key = "ok" if ok else "error"
            stats[key] = stats.get(key, 0) + 1

        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fire(i, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    lat.sort()
    stats.pop("lat")
    stats.pop("any200")
    return {"mode": "open", "rate_offered": rate, "duration_s": duration, "answered": len(lat), "outcomes": stats,
            "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95), "p99_ms": _pct(lat, 99),
            "max_ms": lat[-1] * 1000 if lat else None, "loadgen_cpu_pct": 100 * cpu / elapsed}


def _pct(sorted_lat: list[float], p: float) -> float | None:
    if not sorted_lat:
        return None
    return sorted_lat[min(len(sorted_lat) - 1, int(len(sorted_lat) * p / 100))] * 1000


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--mode", choices=["closed", "open"], default="closed")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--rate", type=float, default=1000)
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--any-200", action="store_true", help="count any 200 as success (the floor)")
    a = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if a.mode == "closed":
        out = asyncio.run(closed_loop(a.url, a.concurrency, a.duration, a.warmup, a.any_200))
    else:
        out = asyncio.run(open_loop(a.url, a.rate, a.duration, a.any_200))
    sys.stdout.write(orjson.dumps(out).decode() + "\n")


if __name__ == "__main__":
    main()
