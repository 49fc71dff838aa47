"""Console settings (prefix `DVCI_CONSOLE_`): accounts, sessions, OpenID Connect, where replays go."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROLES = ("viewer", "operator")


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_CONSOLE_", extra="ignore")

    accounts: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='local accounts: JSON {"name": {"role": "viewer|operator", "password_hash": "scrypt$..."}} '
                    "(hashes from `dvci console hash-password`)")
    session_ttl_s: int = Field(1800, description="idle time after which a session expires (seconds)")
    session_max_s: int = Field(12 * 3600, description="absolute lifetime of a session (seconds)")
    cookie_secure: bool = Field(False, description="mark cookies Secure (on behind TLS in staging/production)")
    default_locale: str = Field("vi", description="vi or en; a user switches with the language link")
    broker_url: str | None = Field(None, description="where replayed dead letters are posted (the broker "
                                                      "ingress); default: $DVCI_BROKER_URL or the dev stack's")
    audit_s3_endpoint_url: str | None = Field(None, description="the audit archive's S3 endpoint; default: "
                                                                  "$S3_ENDPOINT_URL (as the functions)")
    replay_max: int = Field(1000, description="at most this many dead letters replayed by one filtered replay")
    # OpenID Connect (the province's SSO); on when issuer and client id are set
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_uri: str | None = Field(None, description="https://console.example/auth/callback")
    oidc_scopes: str = "openid profile email"
    oidc_role_claim: str = Field("groups", description="claim holding the user's groups or roles")
    oidc_operator_values: list[str] = Field(default_factory=lambda: ["dvci-operator"])
    oidc_viewer_values: list[str] = Field(default_factory=lambda: ["dvci-viewer"],
                                          description="empty: any authenticated user may view")
    oidc_name_claim: str = "preferred_username"

    @field_validator("accounts", mode="before")
    @classmethod
    def _accounts(cls, value: Any) -> Any:
        if isinstance(value, str | bytes):
            value = orjson.loads(value) if value.strip() else {}
        for name, acc in (value or {}).items():
            if acc.get("role") not in ROLES:
                raise ValueError(f"account {name!r}: role must be one of {ROLES}")
            if not str(acc.get("password_hash", "")).startswith("scrypt$"):
                raise ValueError(f"account {name!r}: password_hash must come from `dvci console hash-password`")
        return value

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)
