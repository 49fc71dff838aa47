"""`dvci audit verify|show|seal` and `dvci keys rotate` (added to dvci's parser by `add_commands`), and
`operator_action()`: how every operator command records itself in the audit chain."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson


def _print(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")


def _redis_keys() -> tuple[Any, Any]:
    from dvci import client
    from shared.storage.redis import Keys, from_url

    return from_url(client.redis_url()), Keys(client.env_name())


def _settings() -> Any:
    from dvci import client
    from shared.security.seal import AuditSettings

    return AuditSettings(env=client.env_name())  # type: ignore[call-arg]


async def operator_action(redis: Any, keys: Any, action: str, kind: str, subject: str = "", outcome: str = "ok",
                          reason: str | None = None, **detail: Any) -> dict[str, Any]:
    """Record an operator command (actor: the OS user, or the pod's ServiceAccount)."""
    from shared.security.audit import Audit, operator

    if reason:
        detail["reason"] = reason
    return await Audit(redis, keys).record(actor=operator(), action=action, kind=kind, subject=subject,
                                           outcome=outcome, detail=detail)


def _when(value: str | None) -> float | None:
    if not value:
        return None
    import re
    import time

    from shared.runtime.times import parse_time

    age = re.fullmatch(r"(\d+)([smhd])", value.strip())
    if age:  # 24h, 7d: that long ago
        return time.time() - int(age.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[age.group(2)]
    try:
        return parse_time(value).timestamp()
    except ValueError:
        raise SystemExit(f"dvci: not a time: {value!r} (RFC 3339, or an age such as 24h / 7d)") from None


async def _audit(args: argparse.Namespace) -> int:
    from shared.security import seal

    redis, keys = _redis_keys()
    s = _settings()
    try:
        if args.audit_cmd == "seal":
            _print(await seal.seal(redis, keys, s))
            return 0
        if args.audit_cmd == "show":
            rows = await seal.show(redis, keys, s, dossier=args.dossier, actor=args.actor, action=args.action,
                                   archive=not args.no_archive, limit=args.limit)
            if args.json:
                _print(rows)
            else:
                for r in rows:
                    seq = r.get("seq") if r.get("seq") is not None else "-"
                    print(f"{seq!s:>7}  {r.get('at')}  {r.get('actor')}  {r.get('action')}  {r.get('kind')}  "
                          f"{r.get('subject') or '-'}  {r.get('outcome') or '-'}")
                print(f"{len(rows)} record(s)")
            return 0
        report = await seal.verify(redis, keys, s, since=_when(args.since), until=_when(args.until),
                                   archive=not args.no_archive)
        if args.json:
            _print(report.as_dict())
        if not report.ok:
            print(f"audit chain BROKEN: {report.problem}", file=sys.stderr)
            return 1
        print(f"audit chain verified: {report.segments} sealed segment(s), {report.sealed} sealed record(s), "
              f"{report.live} live record(s), {report.checked} in range")
        return 0
    finally:
        await redis.aclose()


async def _keys(args: argparse.Namespace) -> int:
    from shared.security.crypto import Crypto, CryptoSettings, kek_from_settings

    redis, keys = _redis_keys()
    try:
        s = CryptoSettings(env=keys.prefix.split(":")[1])  # type: ignore[call-arg]
        result = await Crypto(kek_from_settings(s)).rotate(redis, keys)
        await operator_action(redis, keys, "keys.rotate", "keys", subject=result["kek"], reason=args.reason,
                              values=result["values"], rewrapped=result["rewrapped"], skipped=result["skipped"])
        print(f"re-wrapped {result['rewrapped']} of {result['values']} encrypted value(s) under {result['kek']} "
              f"({result['skipped']} changed meanwhile, left as written)")
        return 0
    finally:
        await redis.aclose()


def add_commands(sub: Any) -> None:
    a = sub.add_parser("audit", help="the audit trail: verify the hash chain, show records, seal now")
    a_s = a.add_subparsers(dest="audit_cmd", required=True)
    v = a_s.add_parser("verify", help="recompute the chain across the archive and Redis (exit 1: first bad record)")
    v.add_argument("--since", help="RFC 3339 time or an age (24h, 7d)")
    v.add_argument("--until", help="RFC 3339 time or an age")
    v.add_argument("--no-archive", action="store_true", help="only the live chain (trusting the sealed state)")
    v.add_argument("--json", action="store_true")
    sh = a_s.add_parser("show", help="records by dossier, actor or action")
    sh.add_argument("--dossier")
    sh.add_argument("--actor", help="e.g. user:alice, or just alice")
    sh.add_argument("--action", help="e.g. dlq.replay, or dlq")
    sh.add_argument("--limit", type=int, default=1000)
    sh.add_argument("--no-archive", action="store_true")
    sh.add_argument("--json", action="store_true")
    a_s.add_parser("seal", help="absorb the per-kind streams and seal to the archive now (the audit-seal job)")
    a.set_defaults(fn=lambda args: asyncio.run(_audit(args)))

    k = sub.add_parser("keys", help="encryption keys of citizen data at rest")
    k_s = k.add_subparsers(dest="keys_cmd", required=True)
    r = k_s.add_parser("rotate", help="re-wrap every data key under the current KEK and start a new data key")
    r.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    k.set_defaults(fn=lambda args: asyncio.run(_keys(args)))
