"""`dvci lgsp status` and `dvci lgsp resync DOSSIER --reason` (wired into dvci/cli.py by `add_commands`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import orjson

from shared.security.audit import operator


def add_commands(sub: Any) -> None:
    g = sub.add_parser("lgsp", help="dossier sync to DVCQG/LGSP: status of the outbox, resync a dossier")
    gs = g.add_subparsers(dest="lgsp_cmd", required=True)
    st = gs.add_parser("status", help="per target: queued dossiers, oldest waiting age, last success, breaker")
    st.add_argument("--json", action="store_true")
    rs = gs.add_parser("resync", help="push a dossier's last synced state to every target again (audited)")
    rs.add_argument("dossier")
    rs.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    g.set_defaults(fn=cmd_lgsp)


def cmd_lgsp(args: argparse.Namespace) -> int:
    return asyncio.run(_lgsp(args))


async def _lgsp(args: argparse.Namespace) -> int:
    from dvci import client
    from shared.integrations.lgsp.service import build
    from shared.storage.redis import from_url

    sandbox = client.dev_state().get("sandbox")
    if sandbox and "DVCI_SANDBOX_URL" not in os.environ:  # `dvci dev`: the targets are its sandboxes
        os.environ["DVCI_SANDBOX_URL"] = str(sandbox).rstrip("/")
    redis = from_url(client.redis_url())
    try:
        syncer = build(client.env_name(), redis=redis).syncer
        if args.lgsp_cmd == "status":
            rows = await syncer.status()
            if args.json:
                sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
                return 0
            print(f"{'TARGET':8}  {'QUEUED':>7}  {'OLDEST WAIT':>11}  {'REJECTED':>8}  {'BREAKER':12}  LAST SUCCESS")
            for r in rows:
                print(f"{r['target']:8}  {r['queued']:>7}  {r['oldest_wait_s']:>10.0f}s  {r['rejected']:>8}  "
                      f"{r['breaker']:12}  {r['last_success'] or '-'}")
            return 0
        if not args.reason.strip():
            raise SystemExit("dvci: --reason must say why")
        who = operator()
        result = await syncer.resync(args.dossier, reason=args.reason, by=who)
        for target, state in result.items():
            print(f"{args.dossier} -> {target}: {state}")
        return 0 if all(s != "unknown dossier" for s in result.values()) else 1
    finally:
        await redis.aclose()
