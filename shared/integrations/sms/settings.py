"""Settings of the SMS integration: one class per provider (`DVCI_SMS_<PROVIDER>_*`) and the kind's own."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SmsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_SMS_", extra="ignore")

    brandname: str = Field("DVCTEST", description="Default brandname (ServiceID / LABELID / sender).")
    policy_file: str | None = Field(None, description="YAML replacing the packaged providers.yaml.")
    order: str | None = Field(None, description="Comma-separated provider order overriding the catalogue.")
