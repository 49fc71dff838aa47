"""SMTP (STARTTLS or implicit TLS, AUTH) with aiosmtplib: a small pool of reused connections, timeouts,
replies classified: 5xx for a recipient -> rejected (never failed over), 4xx -> unavailable (fail over),
a lost connection or timeout after DATA -> ambiguous."""

from __future__ import annotations

import asyncio

import aiosmtplib
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.integrations.email import EmailFailure, EmailReceipt, Envelope
from shared.integrations.registry import ProviderSpec
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable


class SmtpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_EMAIL_SMTP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8925
    tls: str = Field("none", description="none | starttls | implicit")
    user: str | None = None
    password: SecretStr | None = None
    timeout_s: float = 10.0
    pool_size: int = 4


PROVIDER = ProviderSpec("email", "smtp", client="shared.integrations.email.smtp:SmtpEmail",
                        settings="shared.integrations.email.smtp:SmtpSettings", simulator="sandbox.smtp:SmtpSimulator")


class SmtpEmail:
    name = "smtp"

    def __init__(self, settings: SmtpSettings | None = None):
        self.settings = settings or SmtpSettings()
        self._idle: list[aiosmtplib.SMTP] = []
        self._sem: asyncio.Semaphore | None = None

    async def _connection(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client
        s = self.settings
        client = aiosmtplib.SMTP(hostname=s.host, port=s.port, timeout=s.timeout_s, use_tls=s.tls == "implicit",
                                 start_tls=True if s.tls == "starttls" else False)
        try:
            await client.connect()
            if s.user and s.password:
                await client.login(s.user, s.password.get_secret_value())
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ProviderUnavailable(self.name, f"cannot connect: {exc!r}") from exc
        return client

    async def status(self, envelope: Envelope) -> EmailReceipt | None:
        raise ProviderAmbiguous(self.name, "no status query: the same message is sent again")

    async def send(self, envelope: Envelope) -> EmailReceipt:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.settings.pool_size)
        async with self._sem:
            client = await self._connection()
            try:
                await client.sendmail(envelope.sender, envelope.recipients, envelope.raw)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._idle.append(client)
                codes = [r.code for r in exc.recipients]
                if all(c >= 500 for c in codes):
                    raise ProviderRejected(self.name, EmailFailure.invalid_recipient,
                                           "; ".join(f"{r.code} {r.message}" for r in exc.recipients)) from exc
                raise ProviderUnavailable(self.name, f"recipients refused temporarily: {codes}") from exc
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code >= 500 and exc.code != 554:
                    self._idle.append(client)
                    raise ProviderRejected(self.name, EmailFailure.invalid_recipient,
                                           f"{exc.code} {exc.message}") from exc
                await _close(client)
                raise ProviderUnavailable(self.name, f"{exc.code} {exc.message}") from exc
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, TimeoutError, OSError) as exc:
                await _close(client)
                raise ProviderAmbiguous(self.name, f"connection lost during the transaction: {exc!r}") from exc
            self._idle.append(client)
        return EmailReceipt(self.name, envelope.message_id)


async def _close(client: aiosmtplib.SMTP) -> None:
    try:
        client.close()
    except Exception:
        pass
