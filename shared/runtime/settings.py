"""Runtime settings (prefix `DVCI_`), plus the Knative-injected `K_SINK` / `K_CE_OVERRIDES`."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    """How a function identifies itself and talks to the broker."""

    model_config = SettingsConfigDict(env_prefix="DVCI_", extra="ignore")

    env: str = Field("dev", description="Environment name; namespaces every Redis key (dvci:<env>:...).")
    source_prefix: str = Field("/dvci", description="Prefix of the `source` of events a function emits.")
    request_deadline_s: float = Field(10.0, description="Time budget of one request, under the broker timeout.")
    log_level: str = "INFO"
    k_sink: str | None = Field(None, validation_alias="K_SINK")
    k_ce_overrides: str | None = Field(None, validation_alias="K_CE_OVERRIDES")


@lru_cache(maxsize=1)
def runtime_settings() -> RuntimeSettings:
    return RuntimeSettings()
