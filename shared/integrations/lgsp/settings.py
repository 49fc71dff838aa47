"""Settings of the LGSP/DVCQG integration: one class per target (`DVCI_DVCQG_*`, `DVCI_LGSP_*`), the sync
(`DVCI_LGSP_SYNC_*`) and the citizen lookup (`DVCI_LGSP_CITIZEN_*`). Defaults are the sandbox's."""

from __future__ import annotations

import base64

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.integrations.registry import sandbox_url

# 32 bytes, obviously fake: only the sandbox/dev stack uses it (production sets DVCI_LGSP_SYNC_DATA_KEY)
_SANDBOX_KEY = base64.b64encode(b"sandbox-only-key-not-for-prod!!!").decode()


class DvcqgSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_DVCQG_", extra="ignore")

    url: str = Field(default_factory=lambda: sandbox_url("/dvcqg"), description="adapter_url of the national portal")
    auth_endpoint: str = "/api/auth"
    integration_endpoint: str = "/api/integration"
    username: str = "sandbox"
    password: SecretStr = SecretStr("sandbox")
    madonvi: str = Field("000.00.01.H22", description="agency identifier (mã định danh đơn vị)")
    timeout_s: float = 3.0
    rate: float = Field(50.0, description="contract calls per second (fleet-wide)")
    burst: int = 10
    session_ttl_s: float = Field(1800, description="how long a session is reused before a new login")


class LgspSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_LGSP_", extra="ignore")

    url: str = Field(default_factory=lambda: sandbox_url("/lgsp"), description="LGSP gateway base (WSO2-style)")
    token_path: str = "/token"
    sync_path: str = "/Document/SyncDocument"
    population_path: str = "/csdlqgdc/v1/citizens/lookup"
    client_id: str = "sandbox-client"
    client_secret: SecretStr = SecretStr("sandbox-secret")
    token_margin_s: float = Field(60, description="refresh a token this long before it expires")
    timeout_s: float = 3.0
    rate: float = 50.0
    burst: int = 10


class SyncSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_LGSP_SYNC_", extra="ignore")

    targets: str = Field("dvcqg,lgsp", description="targets every dossier change goes to")
    data_key: SecretStr = Field(SecretStr(_SANDBOX_KEY),
                                description="base64 AES-256 key: outbox payloads, tokens, citizen cache")
    breaker_failures: int = Field(3, description="consecutive failures that open a target's breaker")
    breaker_cooldown_ms: int = Field(30_000, description="open breaker: time before one probe call")
    lock_ms: int = Field(15_000, description="per-dossier send lease (a crashed holder's lease expires)")
    request_wait_ms: int = Field(1_000, description="wait for a rate slot in a request; beyond it: queued")
    drain_wait_ms: int = Field(10_000, description="wait for a rate slot in the drain")
    drain_budget_s: float = Field(50.0, description="time one drain run may take (PingSource every minute)")
    drain_concurrency: int = Field(16, description="dossiers sent in parallel by one drain run")
    batch_size: int = Field(50, description="dossiers per DongBoHoSoMC/CapNhatTienDoHoSoMC call in the drain")
    reconcile_window_s: int = Field(24 * 3600, description="reconcile the dossiers synced this long ago")
    history_ttl_s: int = Field(90 * 24 * 3600, description="how long per-dossier sync state is kept")

    def key_bytes(self) -> bytes:
        raw = base64.b64decode(self.data_key.get_secret_value())
        if len(raw) != 32:
            raise ValueError("DVCI_LGSP_SYNC_DATA_KEY must be 32 bytes, base64-encoded (AES-256)")
        return raw


class CitizenSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_LGSP_CITIZEN_", extra="ignore")

    cache_ttl_s: int = Field(30 * 24 * 3600, description="how long a live answer may stand in for the source")
    timeout_s: float = 3.0
