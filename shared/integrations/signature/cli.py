"""`dvci pki init`, `dvci sign FILE`, `dvci sign verify FILE` (wired into dvci/cli.py by `add_commands`)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import os
import sys
from pathlib import Path
from typing import Any


def add_commands(sub: Any) -> None:
    k = sub.add_parser("pki", help="the test PKI: root, issuing CA, signers, TSA, OCSP; keys in SoftHSM2")
    ks = k.add_subparsers(dest="pki_cmd", required=True)
    ki = ks.add_parser("init", help="create the test PKI in DIR (kept when it exists; --force remakes it)")
    ki.add_argument("--dir", default=os.environ.get("DVCI_SIGN_PKI_DIR", ".dvci/pki"))
    ki.add_argument("--base-url", default="http://127.0.0.1:8900",
                    help="the sandbox server whose /ocsp and /tsa the certificates point at")
    ki.add_argument("--force", action="store_true")
    k.set_defaults(fn=cmd_pki)

    s = sub.add_parser("sign", help="sign a PDF/XML with a key in the token, or `sign verify FILE`",
                       usage="dvci sign FILE --key LABEL [--level B-T] -o OUT | dvci sign verify FILE [--trust PEM]")
    s.add_argument("target", nargs="+", help="FILE, or: verify FILE")
    s.add_argument("--key", help="label of the key (and certificate) on the token")
    s.add_argument("--level", default="B-T", choices=["B-B", "B-T", "B-LT", "B-LTA"])
    s.add_argument("-o", "--out", help="where to write the signed file")
    s.add_argument("--reason")
    s.add_argument("--location")
    s.add_argument("--visible", action="store_true", help="a visible signature (Vietnamese text) on the last page")
    s.add_argument("--text", help="extra lines of the visible signature")
    s.add_argument("--trust", help="PEM bundle of trust roots (default: the test PKI's root.pem)")
    s.set_defaults(fn=cmd_sign)


def cmd_pki(args: argparse.Namespace) -> int:
    from shared.integrations.signature import pki

    try:
        m = pki.init(args.dir, base_url=args.base_url, force=args.force)
    except pki.PkiError as exc:
        print(f"dvci pki: {exc}", file=sys.stderr)
        return 2
    d = Path(args.dir).resolve()
    print(f"test PKI in {d} (root {d / 'root.pem'}; token {m['token_label']!r}, SOFTHSM2_CONF={m['softhsm2_conf']})")
    print("signer keys on the token: " + ", ".join(m["signers"]) + "  (expired and revoked are refused)")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    target = list(args.target)
    if target[0] == "verify":
        if len(target) != 2:
            print("usage: dvci sign verify FILE [--trust root.pem]", file=sys.stderr)
            return 2
        return asyncio.run(_verify(Path(target[1]), args.trust))
    if len(target) != 1 or not args.key or not args.out:
        print("usage: dvci sign FILE --key LABEL [--level B-T] -o OUT", file=sys.stderr)
        return 2
    return asyncio.run(_sign(Path(target[0]), args))


def _quiet() -> None:
    import logging

    for name in ("pyhanko", "pyhanko_certvalidator", "fontTools"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


async def _verify(path: Path, trust: str | None) -> int:
    from shared.integrations.signature import certs
    from shared.integrations.signature.settings import signing_settings
    from shared.integrations.signature.verify import format_report, verify_pdf
    from shared.runtime.http import close_sessions

    _quiet()
    s = signing_settings()
    roots = certs.load_pem_bundle(trust or s.trust_roots_path)
    chain = certs.load_pem_bundle(s.intermediates_path) if s.intermediates_path.exists() else []
    data = path.read_bytes()
    try:
        if data.lstrip()[:1] == b"<":
            from shared.integrations.signature.xades import verify_xml

            report = await verify_xml(data, roots, chain)
        else:
            report = await verify_pdf(data, roots, chain)
    finally:
        await close_sessions()
    print(f"{path}: sha256 {hashlib.sha256(data).hexdigest()}")
    print(format_report(report))
    return 0 if report.valid else 1


async def _sign(path: Path, args: argparse.Namespace) -> int:
    from shared.integrations.signature import audit
    from shared.integrations.signature.appearance import Appearance
    from shared.integrations.signature.service import PDF, XML, SignJob, build_service
    from shared.reliability.errors import ProviderRejected, ProviderUnavailable
    from shared.runtime.http import close_sessions
    from shared.storage.redis import close_clients

    _quiet()
    data = path.read_bytes()
    content_type = XML if data.lstrip()[:1] == b"<" else PDF
    service = build_service()
    job = SignJob("cli", str(path), content_type, "hsm", args.level, args.key, reason=args.reason,
                  location=args.location, appearance=Appearance(text=args.text) if args.visible else None)
    try:
        signed, signer, signed_at, ts_at = await service.sign_hsm(job, data)
        Path(args.out).write_bytes(signed)
        try:
            who = os.environ.get("DVCI_OPERATOR") or getpass.getuser()
            await audit.record(service.redis, service.keys, action="sign", dossier_id="cli",
                               document_sha256=hashlib.sha256(data).hexdigest(), level=args.level, signer=signer,
                               method="hsm", requested_by=f"cli:{who}", event_id=hashlib.sha256(signed).hexdigest(),
                               output_key=str(args.out))
        except OSError:
            print("dvci sign: warning: audit store unreachable", file=sys.stderr)
    except ProviderRejected as exc:
        print(f"dvci sign: refused: {exc.reason}: {exc.detail}", file=sys.stderr)
        return 1
    except ProviderUnavailable as exc:
        print(f"dvci sign: unavailable (retry later): {exc}", file=sys.stderr)
        return 3
    finally:
        await close_sessions()
        await close_clients()
    print(f"signed {args.out} ({args.level}) by {signer['subject']} at {signed_at}"
          + (f", timestamp {ts_at}" if ts_at else ""))
    return 0
