"""dvci — the command line of DVC Integrations. Errors print one line and exit non-zero."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

import orjson


def _json_arg(value: str) -> Any:
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SystemExit(f"dvci: --data is not valid JSON: {exc}") from None


def _print(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")


def _who(args: argparse.Namespace) -> str:
    """The operator: the OS user or the pod's ServiceAccount (shared/security/audit.py), never a typed name."""
    from shared.security.audit import operator

    return operator()


async def _audited(redis: Any, args: argparse.Namespace, action: str, kind: str, subject: str,
                   outcome: str = "ok", **detail: Any) -> None:
    from dvci import client
    from shared.security.cli import operator_action
    from shared.storage.redis import Keys

    await operator_action(redis, Keys(client.env_name()), action, kind, subject, outcome,
                          reason=getattr(args, "reason", None), **detail)


# -- dev / demo / sandbox ------------------------------------------------------------------------
async def _dev(args: argparse.Namespace, demo: bool, stay: bool) -> int:
    from dvci.demo import run_demo
    from dvci.dev import DevStack

    console_port = None
    if getattr(args, "console_port", None) != 0:
        from console.dev import free_or

        console_port = args.console_port or free_or(args.port + 40)
    stack = DevStack(port=args.port, sandbox_port=args.sandbox_port, smtp_port=args.smtp_port,
                     console_port=console_port)
    print(f"dvci dev: starting (broker :{args.port}, env {stack.env}, "
          f"Redis {'REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded'})", flush=True)
    await stack.start()  # stops whatever it started if it fails
    print(f"dvci dev: sandbox http://127.0.0.1:{stack.sandbox_port}/ , SMTP :{stack.smtp_port}, "
          f"moto :{stack.moto_port or '-'}", flush=True)
    print("dvci dev: ready — functions: " + ", ".join(f"{n} {f.url}" for n, f in stack.functions.items()),
          flush=True)
    if getattr(stack, "console", None) is not None:
        user, password = stack.console.login
        print(f"dvci dev: console {stack.console.url}" + (f" (log in as {user} / {password})" if user else ""),
              flush=True)
    code = 0
    try:
        if demo:
            code = await run_demo(f"http://127.0.0.1:{args.port}/")
        if stay:
            print("dvci dev: up; Ctrl-C to stop. Send events to "
                  f"http://127.0.0.1:{args.port}/ ; inspect http://127.0.0.1:{args.port}/_broker/events", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            import signal
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
    finally:
        await stack.stop()
    return code


def cmd_dev(args: argparse.Namespace) -> int:
    return asyncio.run(_dev(args, demo=args.demo, stay=True))


def cmd_demo(args: argparse.Namespace) -> int:
    return asyncio.run(_dev(args, demo=True, stay=False))


def cmd_sandbox(args: argparse.Namespace) -> int:
    from functools import partial

    from sandbox.server import serve

    serve(args.host, args.port, args.smtp_port, announce=partial(print, flush=True))  # prints the bound ports
    return 0


# -- emit ------------------------------------------------------------------------------------------
async def _emit(args: argparse.Namespace) -> int:
    import aiohttp

    from dvci import client

    event = client.make_event(args.type, _json_arg(args.data) if args.data else None, args.source, args.id)
    base = client.broker_url()
    async with aiohttp.ClientSession() as session:
        try:
            status, body = await client.post_event(session, base, event)
        except aiohttp.ClientError as exc:
            raise SystemExit(f"dvci: broker at {base} unreachable ({exc}); is `dvci dev` running?") from None
        if status >= 300:
            raise SystemExit(f"dvci: broker refused the event: HTTP {status} {body.decode(errors='replace')}")
        print(f"emitted {event.type} id={event.id}")
        chain = await client.follow(session, base, event, args.wait)
        for rec in chain[1:]:
            print(f"<- {rec['type']} id={rec['id']}")
            _print(rec["data"])
        accepted = {r["data"]["provider_message_id"] for r in chain if r["type"] == "vn.gov.dvc.sms.accepted"}
        if accepted and args.receipts:
            print("   waiting for the delivery receipt...", flush=True)
            for rec in await client.receipts_for(session, base, accepted, args.wait):
                print(f"<- {rec['type']} id={rec['id']}")
                _print(rec["data"])
    for rec in chain:
        for d in rec["deliveries"]:
            codes = ",".join(str(a["status"]) for a in d["attempts"])
            print(f"   {rec['type']} -> {d['trigger']}: {d['outcome']} (HTTP {codes or '-'})")
    return 0


def cmd_emit(args: argparse.Namespace) -> int:
    return asyncio.run(_emit(args))


# -- dlq ---------------------------------------------------------------------------------------------
def _store() -> Any:
    from dvci import client
    from shared.reliability.deadletters import DeadLetterStore
    from shared.storage.redis import Keys, from_url

    return DeadLetterStore(from_url(client.redis_url()), Keys(client.env_name()))


async def _dlq(args: argparse.Namespace) -> int:
    import aiohttp

    from dvci import client
    from shared.reliability.keys import event_digest
    from shared.runtime.events import CloudEvent
    from shared.runtime.times import to_rfc3339

    store = _store()
    try:
        if args.dlq_cmd == "list":
            letters = await store.list(args.type)
            if args.json:
                _print([x.summary() for x in letters])
            else:
                print(f"{'ID':16}  {'CODE':4}  {'TIMES':5}  {'REPLAYS':7}  {'TYPE':40}  REASON")
                for x in letters:
                    s = x.summary()
                    print(f"{s['id']:16}  {s['error_code'] or '-':<4}  {s['times']:<5}  {s['replays']:<7}  "
                          f"{s['type']:40}  {(s['reason'] or '')[:80]}")
                print(f"{len(letters)} dead letter(s)")
            return 0
        if args.dlq_cmd == "show":
            letter = await store.get(args.id)
            if letter is None:
                raise SystemExit(f"dvci: no dead letter {args.id}")
            _print({**letter.summary(), "event": letter.event, "error_dest": letter.error_dest,
                    "error_data": letter.error_data,
                    "replay_log": [{**r, "at": to_rfc3339(r["at"])} if "at" in r else r for r in letter.replays]})
            return 0
        if args.dlq_cmd == "purge":
            found = await store.purge(args.id, _who(args))
            await _audited(store.redis, args, "dlq.purge", "dlq", args.id, "ok" if found else "not_found")
            if not found:
                raise SystemExit(f"dvci: no dead letter {args.id}")
            print(f"purged {args.id}")
            return 0
        # replay
        if args.all:
            letters = await store.list(args.type)
        else:
            if not args.id:
                raise SystemExit("dvci: dlq replay needs an ID or --all")
            one = await store.get(args.id)
            if one is None:
                raise SystemExit(f"dvci: no dead letter {args.id}")
            letters = [one]
        base = client.broker_url()
        failed = 0
        async with aiohttp.ClientSession() as session:
            for i, letter in enumerate(letters, 1):
                if "dvcitruncated" in letter.event:  # kept without its data (over DVCI_DLQ_MAX_EVENT_BYTES)
                    print(f"[{i}/{len(letters)}] {letter.id}: not replayable (event was "
                          f"{letter.event['dvcitruncated']} bytes; only its attributes were kept)")
                    failed += 1
                    continue
                done = [r for r in letter.replays if int(r.get("status", 999)) < 300]
                if done and not args.force:  # its completed record may have expired: the same id would re-send
                    if not args.all:
                        raise SystemExit(f"dvci: {letter.id} was already replayed successfully "
                                         f"({to_rfc3339(done[-1]['at'])}); --force sends it again as a new event")
                    print(f"[{i}/{len(letters)}] {letter.id}: already replayed successfully, skipped (--force)")
                    continue
                event = CloudEvent.from_dict(letter.event)
                if args.force:  # a deliberate re-send: a new event, its id fixed by (letter, replay number)
                    event.id = event_digest(letter.id, str(len(letter.replays) + 1))
                try:
                    status, _ = await client.post_event(session, base, event)
                except aiohttp.ClientError as exc:
                    raise SystemExit(f"dvci: broker at {base} unreachable ({exc})") from None
                await store.mark_replayed(letter, _who(args), status)
                await _audited(store.redis, args, "dlq.replay", "dlq", letter.id,
                               "ok" if status < 300 else "refused", status=status, type=letter.type)
                failed += status >= 300
                print(f"[{i}/{len(letters)}] replayed {letter.id} ({letter.type}): HTTP {status}")
        return 1 if failed else 0
    finally:
        await store.redis.aclose()


def cmd_dlq(args: argparse.Namespace) -> int:
    return asyncio.run(_dlq(args))


# -- breaker -----------------------------------------------------------------------------------------
async def _breaker(args: argparse.Namespace) -> int:
    from dvci import client
    from shared.reliability.breakers import BreakerAdmin
    from shared.runtime.times import to_rfc3339
    from shared.storage.redis import Keys, from_url

    admin = BreakerAdmin(from_url(client.redis_url()), Keys(client.env_name()))
    try:
        if args.breaker_cmd == "status":
            rows = await admin.status()
            if args.json:
                _print([{**r, "opened": to_rfc3339(r["opened"]) if r["opened"] else None} for r in rows])
            else:
                print(f"{'BREAKER':20}  {'STATE':10}  {'FORCED':8}  {'FAILS':5}  SINCE")
                for r in rows:
                    since = to_rfc3339(r["opened"]) if r["opened"] else "-"
                    print(f"{r['name']:20}  {r['state']:10}  {r['forced'] or '-':8}  {r['fails']:<5}  {since}")
            return 0
        await admin.force(args.name, args.breaker_cmd, _who(args))
        await _audited(admin.redis, args, f"breaker.{args.breaker_cmd}", args.name.split(".", 1)[0], args.name)
        print(f"breaker {args.name} forced {args.breaker_cmd} by {_who(args)}")
        return 0
    finally:
        await admin.redis.aclose()


def cmd_breaker(args: argparse.Namespace) -> int:
    return asyncio.run(_breaker(args))


async def _sms(args: argparse.Namespace) -> int:
    from dvci import client
    from shared.integrations.sms.report import parse_since, spend
    from shared.storage.redis import Keys, from_url

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        raise SystemExit(f"dvci: {exc}") from None
    redis = from_url(client.redis_url())
    try:
        rows = await spend(redis, Keys(client.env_name()), since)
    finally:
        await redis.aclose()
    if args.json:
        _print(rows)
        return 0
    print(f"SMS spend over the last {args.since}")
    print(f"{'PROVIDER':10}  {'CARRIER':13}  {'MESSAGES':>8}  {'SEGMENTS':>8}  {'VND':>12}")
    for r in rows:
        print(f"{r['provider']:10}  {r['carrier']:13}  {r['messages']:>8}  {r['segments']:>8}  {r['cost_vnd']:>12,.0f}")
    total = sum(r["cost_vnd"] for r in rows)
    print(f"{'total':10}  {'':13}  {sum(r['messages'] for r in rows):>8}  {sum(r['segments'] for r in rows):>8}  "
          f"{total:>12,.0f}")
    return 0


def cmd_sms(args: argparse.Namespace) -> int:
    return asyncio.run(_sms(args))


async def _email(args: argparse.Namespace) -> int:
    if args.email_cmd == "preview":
        return _preview(args)
    from dvci import client
    from shared.integrations.email.suppression import Suppressions
    from shared.storage.redis import Keys, from_url

    redis = from_url(client.redis_url())
    try:
        lifted = await Suppressions(redis, Keys(client.env_name())).remove(args.address)
        from shared.security.crypto import blind_index

        subject = blind_index("email.address", args.address.strip().lower())
        await _audited(redis, args, "email.unsuppress", "email", subject, "ok" if lifted else "not_suppressed")
    finally:
        await redis.aclose()
    print(f"{'lifted' if lifted else 'was not suppressed'}: {args.address} (by {_who(args)})")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from shared.integrations.email import mime
    from shared.integrations.email.settings import EmailSettings
    from shared.integrations.email.templates import TemplateError, render

    params = _json_arg(args.data) if args.data else {}
    try:
        r = render(args.template, args.locale, params)
    except TemplateError as exc:
        raise SystemExit(f"dvci: {exc}") from None
    if args.out:
        out = Path(args.out)
        if out.suffix == ".html":
            out.write_text(r.html)
        else:
            settings = EmailSettings()
            msg = mime.build(sender=settings.sender, to=["preview@example.vn"], cc=[], subject=r.subject, text=r.text,
                             html=r.html, attachments=[], msg_id=f"<preview@{settings.domain}>", date=None)
            out.write_bytes(mime.to_bytes(msg))
        print(f"wrote {out}")
        return 0
    print(f"Subject: {r.subject}\n\n{r.text}")
    return 0


def cmd_email(args: argparse.Namespace) -> int:
    return _preview(args) if args.email_cmd == "preview" else asyncio.run(_email(args))


def cmd_schemas(args: argparse.Namespace) -> int:
    from dvci import schemas

    if args.check:
        out = schemas.stale()
        if out:
            raise SystemExit(f"dvci: schemas/ is stale ({', '.join(out)}): run `dvci schemas`")
        print("schemas/ is up to date")
        return 0
    names = schemas.write()
    print(f"wrote {len(names)} files to schemas/")
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from dvci import openapi

    if args.check:
        if openapi.stale():
            raise SystemExit("dvci: docs/openapi.yaml is stale: run `dvci openapi`")
        print("docs/openapi.yaml is up to date")
        return 0
    print(f"wrote {openapi.write().relative_to(openapi.ROOT)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dvci", description="DVC Integrations command line")
    sub = p.add_subparsers(dest="cmd", required=True)

    for name, fn, helptext in (("dev", cmd_dev, "run the whole stack locally until Ctrl-C"),
                               ("demo", cmd_demo, "run the stack, play the demo, exit")):
        d = sub.add_parser(name, help=helptext)
        d.add_argument("--port", type=int, default=8080, help="broker ingress port (functions use the next ones)")
        d.add_argument("--sandbox-port", type=int, default=None,
                       help="default: --port + 50 (a free one if taken); printed once started")
        d.add_argument("--smtp-port", type=int, default=None,
                       help="the sandbox SMTP server; default: sandbox port + 25 (a free one if taken)")
        d.add_argument("--console-port", type=int, default=None,
                       help="the operator console; default: --port + 40 (a free one if taken); 0: no console")
        if name == "dev":
            d.add_argument("--demo", action="store_true", help="play the demo once started")
        d.set_defaults(fn=fn)

    s = sub.add_parser("sandbox", help="serve every provider simulator")
    s.add_argument("--port", type=int, default=8900, help="0: a free port (printed)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--smtp-port", type=int, default=None,
                   help="default: --port + 25 (a free one if taken); 0: a free port (printed)")
    s.set_defaults(fn=cmd_sandbox)

    e = sub.add_parser("emit", help="post an event to the local broker and print what follows")
    e.add_argument("type")
    e.add_argument("--data", help="JSON, or @file")
    e.add_argument("--source", default="/dvci/cli")
    e.add_argument("--id", default=None)
    e.add_argument("--wait", type=float, default=15.0, help="seconds to wait for replies")
    e.add_argument("--no-receipts", dest="receipts", action="store_false",
                   help="do not wait for the SMS delivery receipt")
    e.set_defaults(fn=cmd_emit)

    q = sub.add_parser("dlq", help="dead letters: list, show, replay, purge")
    qs = q.add_subparsers(dest="dlq_cmd", required=True)
    ql = qs.add_parser("list")
    ql.add_argument("--type")
    ql.add_argument("--json", action="store_true")
    qsh = qs.add_parser("show")
    qsh.add_argument("id")
    qr = qs.add_parser("replay")
    qr.add_argument("id", nargs="?")
    qr.add_argument("--all", action="store_true")
    qr.add_argument("--type")
    qr.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    qr.add_argument("--force", action="store_true",
                    help="send a letter already replayed successfully again, as a new event (new id)")
    qp = qs.add_parser("purge")
    qp.add_argument("id")
    qp.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    q.set_defaults(fn=cmd_dlq)

    b = sub.add_parser("breaker", help="circuit breakers: status, force open/close")
    bs = b.add_subparsers(dest="breaker_cmd", required=True)
    bst = bs.add_parser("status")
    bst.add_argument("--json", action="store_true")
    for verb in ("open", "close", "auto"):
        bv = bs.add_parser(verb, help=f"force the breaker {verb}" if verb != "auto" else "lift a forced state")
        bv.add_argument("name", help="kind.provider, e.g. sms.viettel")
        bv.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    b.set_defaults(fn=cmd_breaker)

    sc = sub.add_parser("schemas", help="generate schemas/ (JSON Schema per event + AsyncAPI) from the models")
    sc.add_argument("--check", action="store_true", help="fail if schemas/ differs from the models")
    sc.set_defaults(fn=cmd_schemas)

    oa = sub.add_parser("openapi", help="generate docs/openapi.yaml (OpenAPI 3.1 of every function's HTTP surface)")
    oa.add_argument("--check", action="store_true", help="fail if docs/openapi.yaml differs from the functions")
    oa.set_defaults(fn=cmd_openapi)

    em = sub.add_parser("email", help="e-mail: preview a template, lift a suppression")
    ems = em.add_subparsers(dest="email_cmd", required=True)
    ep = ems.add_parser("preview", help="render a template to the terminal, or to an .eml/.html file")
    ep.add_argument("template")
    ep.add_argument("--locale", default="vi", choices=["vi", "en"])
    ep.add_argument("--data", help="params as JSON, or @file")
    ep.add_argument("--out", help="write an .eml (MIME) or .html file instead")
    eu = ems.add_parser("unsuppress", help="lift a hard-bounce/complaint suppression (recorded)")
    eu.add_argument("address")
    eu.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    em.set_defaults(fn=cmd_email)

    m = sub.add_parser("sms", help="SMS reports")
    ms = m.add_subparsers(dest="sms_cmd", required=True)
    mc = ms.add_parser("cost", help="spend and messages by provider and carrier")
    mc.add_argument("--since", default="24h", help="e.g. 24h, 7d, 30m")
    mc.add_argument("--json", action="store_true")
    m.set_defaults(fn=cmd_sms)

    from shared.integrations.signature.cli import add_commands as signing_commands  # pki init, sign, sign verify

    signing_commands(sub)
    from shared.integrations.lgsp.cli import add_commands as lgsp_commands  # lgsp status, lgsp resync

    lgsp_commands(sub)

    from shared.integrations.postal.cli import add_commands as postal_commands  # postal label, postal track

    postal_commands(sub)

    from shared.security.cli import add_commands as security_commands  # audit verify|show|seal, keys rotate

    security_commands(sub)
    from console.cli import add_commands as console_commands  # console --port P, console hash-password

    console_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("DVCI_LOG_LEVEL", "WARNING"))
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line, never a traceback
        from dvci.client import StackError

        if isinstance(exc, StackError | OSError):
            print(f"dvci: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
