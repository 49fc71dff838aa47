"""Runtime settings (prefix `DVCI_`), plus the Knative-injected `K_SINK` / `K_CE_OVERRIDES`."""

from __future__ import annotations

import re
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


#: environments that are production for policy decisions (allow-lists required, no sandbox fallbacks)
PRODUCTION_ENVS = frozenset(("staging", "production"))


def is_production(env: str) -> bool:
    """`DVCI_ENV` names a production environment (staging, production)."""
    return env in PRODUCTION_ENVS


def allows_sandbox_defaults(env: str) -> bool:
    """Only a dev or test environment (`dev`, `dev-2`, `test1234`) may fall back to published sandbox secrets."""
    return re.fullmatch(r"(dev|test)([0-9_.-].*)?", env) is not None


class LimitSettings(BaseSettings):
    """Bounds on every input (`DVCI_LIMIT_*`): applied before anything is logged, stored or sent."""

    model_config = SettingsConfigDict(env_prefix="DVCI_LIMIT_", extra="ignore")

    event_body_bytes: int = Field(1024 * 1024, gt=0, description="Largest CloudEvent request body (413 above)")
    route_body_bytes: int = Field(256 * 1024, gt=0, description="Largest body of a plain route (webhooks)")
    route_body_overrides: dict[str, int] = Field(default_factory=dict,
                                                 description='Per-route limits, JSON: {"/<route path>": <bytes>}')
    attribute_chars: int = Field(1024, gt=0, description="Longest context attribute or extension value")
    extensions: int = Field(32, gt=0, description="Most extension attributes on one event")
    json_depth: int = Field(64, gt=1, le=250,
                            description="Deepest JSON nesting accepted (orjson writes at most 254 levels)")

    def route_limit(self, path: str) -> int:
        return self.route_body_overrides.get(path, self.route_body_bytes)


@lru_cache(maxsize=1)
def limit_settings() -> LimitSettings:
    return LimitSettings()
