"""The local broker's durable dead-letter spool: a dead letter the sink could not take (the dead_letter
function answers 503 while Redis is down) is kept on disk (SQLite) and handed over again until the sink
takes it — across restarts of `dvci dev`. Production has the same property from its broker: the dead-letter
sink is a Kafka topic (KafkaSink) that the dead_letter function consumes (infra/knative/overlays/production).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Spooled:
    id: int
    url: str
    headers: dict[str, str]
    body: bytes
    tries: int


class DeadLetterSpool:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a spooled letter survives a crash of dvci dev
        self.db.execute("CREATE TABLE IF NOT EXISTS letters (id INTEGER PRIMARY KEY, url TEXT NOT NULL, "
                        "headers TEXT NOT NULL, body BLOB NOT NULL, tries INTEGER NOT NULL DEFAULT 0, "
                        "next_at REAL NOT NULL, key TEXT NOT NULL)")

    def put(self, url: str, headers: dict[str, str], body: bytes, key: str) -> int:
        import orjson

        cur = self.db.execute("INSERT INTO letters (url, headers, body, next_at, key) VALUES (?, ?, ?, ?, ?)",
                              (url, orjson.dumps(headers).decode(), body, time.time(), key))
        return int(cur.lastrowid or 0)

    def due(self, now: float | None = None, limit: int = 200) -> list[Spooled]:
        import orjson

        rows = self.db.execute("SELECT id, url, headers, body, tries FROM letters WHERE next_at <= ? "
                               "ORDER BY id LIMIT ?", (now or time.time(), limit)).fetchall()
        return [Spooled(r[0], r[1], orjson.loads(r[2]), bytes(r[3]), r[4]) for r in rows]

    def key_of(self, letter_id: int) -> str | None:
        row = self.db.execute("SELECT key FROM letters WHERE id = ?", (letter_id,)).fetchone()
        return row[0] if row else None

    def retry_later(self, letter_id: int, tries: int) -> None:
        delay = min(30.0, 0.5 * 2 ** min(tries, 6))
        self.db.execute("UPDATE letters SET tries = ?, next_at = ? WHERE id = ?",
                        (tries + 1, time.time() + delay, letter_id))

    def done(self, letter_id: int) -> None:
        self.db.execute("DELETE FROM letters WHERE id = ?", (letter_id,))

    def size(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM letters").fetchone()[0])

    def close(self) -> None:
        self.db.close()
