"""A real SMTP server (aiosmtpd) named `smtp`: keeps every message as received (envelope + raw bytes,
field `raw`) behind the same control API, and fails on order: status 421/451 (temporary, at DATA) or
550 (permanent, at RCPT) with `error_rate`, `timeout_rate` holds the answer after DATA."""

from __future__ import annotations

import asyncio
import email
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from sandbox.base import Handler, Simulator


class SmtpSimulator(Simulator):
    name = "smtp"

    def routes(self) -> list[tuple[str, str, Handler]]:
        return []  # the provider speaks SMTP, not HTTP: see start()

    async def start(self, host: str = "127.0.0.1", port: int = 8925) -> asyncio.AbstractServer:
        handler = _Handler(self)
        return await asyncio.get_running_loop().create_server(
            lambda: SMTP(handler, enable_SMTPUTF8=True, decode_data=False, ident="dvci-sandbox-smtp"), host, port)


class _Handler:
    def __init__(self, sim: SmtpSimulator):
        self.sim = sim

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        f = self.sim.faults
        if f and f.status == 550 and f.error_rate and self.sim.rng.random() < f.error_rate:
            self.sim._take_fault()
            self.sim.log({"fault": "550", "rcpt": "<redacted>"})
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw: bytes = envelope.original_content or envelope.content  # type: ignore[assignment]
        parsed = email.message_from_bytes(raw, policy=default_policy)
        ref = str(parsed.get("Message-ID", ""))
        f = self.sim._take_fault()
        if f is not None and f.status in (421, 451) and f.error_rate and self.sim.rng.random() < f.error_rate:
            self.sim.log({"fault": str(f.status), "reference": ref})
            return f"{f.status} 4.3.0 Temporary failure, try again later"
        entry: dict[str, Any] = {"envelope": {"from": envelope.mail_from, "to": list(envelope.rcpt_tos)},
                                 "raw": raw.decode("utf-8", errors="replace"), "message_id": ref}
        self.sim.receive(ref, entry)
        self.sim.messages[ref] = {"message_id": ref, **entry}
        if f is not None and f.timeout_rate and self.sim.rng.random() < f.timeout_rate:
            await asyncio.sleep(f.hang_s)
        return "250 2.0.0 Message accepted for delivery"
