"""Settings of the SMS integration: one class per provider (`DVCI_SMS_<PROVIDER>_*`) and the kind's own."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SmsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_SMS_", extra="ignore")

    brandname: str = Field("DVCTEST", description="Default brandname (ServiceID / LABELID / sender).")
    policy_file: str | None = Field(None, description="YAML replacing the packaged providers.yaml.")
    order: str | None = Field(None, description="Comma-separated provider order overriding the catalogue.")


class ViettelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_SMS_VIETTEL_", extra="ignore")

    url: str = "http://127.0.0.1:8900/viettel/bulkapi"
    user: str = "sandbox"
    password: SecretStr = SecretStr("sandbox")
    cpcode: str = "DVC"
    timeout_s: float = 3.0
    delivered_after_s: float = Field(600, description="Viettel reports only failures: a message with no failure "
                                                      "reported this long after acceptance counts as delivered")


class VnptSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_SMS_VNPT_", extra="ignore")

    url: str = "http://127.0.0.1:8900/vnpt/api"
    user: str = "sandbox"
    password: SecretStr = SecretStr("sandbox")
    username: str = "dvc"
    label_id: str = "1"
    contract_id: str = "1"
    contract_type_id: str = "1"
    template_id: str = "1"
    agent_id: str = "1"
    timeout_s: float = 3.0
    dlr_secret: SecretStr = SecretStr("sandbox-dlr-secret")
    dlr_allow_ips: str = Field("", description="Comma-separated CIDRs allowed to post receipts unsigned")


class MobifoneSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_SMS_MOBIFONE_", extra="ignore")

    url: str = "http://127.0.0.1:8900/mobifone"
    token: SecretStr = SecretStr("sandbox-token")
    timeout_s: float = 3.0
    dlr_secret: SecretStr = SecretStr("sandbox-dlr-secret")
    dlr_allow_ips: str = Field("", description="Comma-separated CIDRs allowed to post receipts unsigned")
