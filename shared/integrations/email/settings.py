"""Settings of the e-mail integration (`DVCI_EMAIL_*`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EmailSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_EMAIL_", extra="ignore")

    sender: str = Field("Cổng Dịch vụ công <no-reply@dichvucong.example.vn>", description="From header")
    domain: str = Field("dichvucong.example.vn", description="Right-hand side of Message-IDs")
    order: str = Field("smtp,ses", description="Provider failover order")
    max_attachment_bytes: int = Field(10 * 1024 * 1024, description="Per message, all attachments together")
    attachments_bucket: str = "dvci-attachments"
    s3_endpoint_url: str | None = Field(None, validation_alias="S3_ENDPOINT_URL")
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: SecretStr | None = Field(None, description="PEM; from a Secret")
    sns_topic_arns: str = Field("", description="Comma-separated SNS topics accepted at /ses/notifications "
                                "(required when DVCI_ENV is staging or production)")
    sns_max_age_s: float = Field(3600.0, gt=0, description="SNS messages whose Timestamp is further from now "
                                 "(either way) are refused")
