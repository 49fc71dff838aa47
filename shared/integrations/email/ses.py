"""Amazon SES through boto3 (`SendRawEmail`: the same MIME bytes as SMTP, byte for byte). boto3 is
imported on first use only, in a worker thread (its client is synchronous)."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.integrations.email import EmailFailure, EmailReceipt, Envelope
from shared.integrations.registry import ProviderSpec
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable


class SesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_EMAIL_SES_", extra="ignore")

    region: str = "ap-southeast-1"
    endpoint_url: str | None = Field(None, description="moto server in development and tests")
    configuration_set: str | None = None
    timeout_s: float = 10.0


PROVIDER = ProviderSpec("email", "ses", client="shared.integrations.email.ses:SesEmail",
                        settings="shared.integrations.email.ses:SesSettings")


class SesEmail:
    name = "ses"

    def __init__(self, settings: SesSettings | None = None):
        self.settings = settings or SesSettings()
        self._client: Any = None

    def _ses(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client("ses", region_name=self.settings.region,
                                        endpoint_url=self.settings.endpoint_url,
                                        config=Config(connect_timeout=3, read_timeout=self.settings.timeout_s,
                                                      retries={"max_attempts": 1}))
        return self._client

    def _send(self, envelope: Envelope) -> str:
        kwargs: dict[str, Any] = {"Source": envelope.sender, "Destinations": envelope.recipients,
                                  "RawMessage": {"Data": envelope.raw}}
        if self.settings.configuration_set:
            kwargs["ConfigurationSetName"] = self.settings.configuration_set
        return str(self._ses().send_raw_email(**kwargs)["MessageId"])

    async def status(self, envelope: Envelope) -> EmailReceipt | None:
        raise ProviderAmbiguous(self.name, "no status query: the same message is sent again")

    async def send(self, envelope: Envelope) -> EmailReceipt:
        from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

        try:
            message_id = await asyncio.to_thread(self._send, envelope)
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise ProviderUnavailable(self.name, f"cannot reach SES: {exc}") from exc
        except ReadTimeoutError as exc:
            raise ProviderAmbiguous(self.name, f"no answer from SES: {exc}") from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("MessageRejected", "InvalidParameterValue"):
                raise ProviderRejected(self.name, EmailFailure.content_rejected, f"{code}: {exc}") from exc
            raise ProviderUnavailable(self.name, f"{code}: {exc}") from exc
        return EmailReceipt(self.name, message_id)
