"""`dvci postal label TRACKING -o label.pdf` (the label PDF from object storage) and `dvci postal track
TRACKING` (the shipment's status and every carrier event, in arrival order)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any


def add_commands(sub: Any) -> None:
    p = sub.add_parser("postal", help="postal shipments: label PDF, tracking history")
    ps = p.add_subparsers(dest="postal_cmd", required=True)
    lb = ps.add_parser("label", help="download a shipment's label PDF")
    lb.add_argument("tracking_number")
    lb.add_argument("-o", "--out", default=None, help="file to write (default: <tracking>.pdf)")
    tr = ps.add_parser("track", help="print a shipment's tracking history")
    tr.add_argument("tracking_number")
    tr.add_argument("--json", action="store_true")
    p.set_defaults(fn=lambda args: asyncio.run(run(args)))


async def _lookup(number: str) -> tuple[dict[str, str], str, Any, Any] | None:
    from dvci import client
    from shared.integrations.postal.providers import REGISTRY
    from shared.storage.redis import Keys, from_url

    keys = Keys(client.env_name())
    redis = from_url(client.redis_url())
    for carrier in REGISTRY.names():
        sid = await redis.get(keys.key("postal", "tracking", carrier, number))
        if sid:
            raw = await redis.hgetall(keys.key("postal", "shipment", _text(sid)))
            return {_text(k): _text(v) for k, v in raw.items()}, carrier, redis, keys
    await redis.aclose()
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def run(args: argparse.Namespace) -> int:
    import orjson

    found = await _lookup(args.tracking_number)
    if found is None:
        raise SystemExit(f"dvci: no shipment with tracking number {args.tracking_number}")
    record, carrier, redis, keys = found
    try:
        if args.postal_cmd == "label":
            from shared.integrations.postal.settings import PostalSettings
            from shared.storage.objects import ObjectStore

            s = PostalSettings()
            pdf = await ObjectStore(s.label_bucket, s.s3_endpoint_url).get(record["label_key"], 5 * 1024 * 1024)
            out = Path(args.out or f"{args.tracking_number}.pdf")
            out.write_bytes(pdf)
            print(f"wrote {out} ({len(pdf)} bytes, {carrier}, dossier {record.get('dossier_id')})")
            return 0
        from shared.reliability.statusbook import StatusBook

        book = StatusBook(redis, {})
        key = keys.key("postal", "status", carrier, args.tracking_number)
        history = await book.history(key)
        status = await book.current(key)
        if args.json:
            print(orjson.dumps({"carrier": carrier, "tracking_number": args.tracking_number, "status": status,
                                "dossier_id": record.get("dossier_id"), "history": history}).decode())
            return 0
        from shared.integrations.postal.tracking import rfc3339

        print(f"{args.tracking_number}  {carrier}  dossier {record.get('dossier_id')}  status: {status or '-'}")
        for h in history:
            where = f"  @{h['location']}" if h.get("location") else ""
            print(f"  {rfc3339(int(h['at_ms']))}  {h['status']:<16} [{h.get('carrier_status')}] "
                  f"{h.get('description', '')}{where}")
        return 0
    finally:
        await redis.aclose()
