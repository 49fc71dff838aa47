"""`dvci console --port P` (serve the console against the dev stack's Redis, or REDIS_URL) and
`dvci console hash-password` (a password on standard input -> a hash for DVCI_CONSOLE_ACCOUNTS)."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from typing import Any

import orjson


def local_accounts() -> tuple[str | None, str | None]:
    """Locally, with no accounts and no SSO configured: one operator account with a random password, put in
    the environment (printed by the caller). Returns (user, password), or (None, None) when configured."""
    from console.auth import hash_password
    from console.settings import ConsoleSettings

    s = ConsoleSettings()
    if s.accounts or s.oidc_enabled:
        return None, None
    password = secrets.token_urlsafe(12)
    os.environ["DVCI_CONSOLE_ACCOUNTS"] = orjson.dumps(
        {"operator": {"role": "operator", "password_hash": hash_password(password)}}).decode()
    return "operator", password


def build(port: int, host: str = "127.0.0.1") -> Any:
    """The console's ASGI app and a uvicorn server for it (not started)."""
    import uvicorn

    from console.app import create_app
    from dvci import client

    app = create_app(redis_url=client.redis_url(), env=client.env_name())
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    return app, uvicorn.Server(config)


def cmd_console(args: argparse.Namespace) -> int:
    if args.console_cmd == "hash-password":
        from console.auth import hash_password

        password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < 8:
            raise SystemExit("dvci: the password (one line on standard input) must have at least 8 characters")
        print(hash_password(password))
        return 0
    user, password = local_accounts()
    _, server = build(args.port, args.host)
    print(f"dvci console: http://{args.host}:{args.port}/" +
          (f" — log in as {user} / {password} (no DVCI_CONSOLE_ACCOUNTS set)" if user else ""), flush=True)
    server.run()
    return 0


def add_commands(sub: Any) -> None:
    c = sub.add_parser("console", help="the operator console (web): serve it, or hash a password for its accounts")
    c.add_argument("--port", type=int, default=8070)
    c.add_argument("--host", default="127.0.0.1")
    cs = c.add_subparsers(dest="console_cmd", required=False)
    cs.add_parser("hash-password", help="read a password on standard input, print its scrypt hash")
    c.set_defaults(fn=cmd_console, console_cmd=None)
