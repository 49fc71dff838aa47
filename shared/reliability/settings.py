"""Reliability settings (`DVCI_RELIABILITY_*`): idempotency leases and TTLs, rate-limit waits."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.reliability.policy import IdempotencyConfig


class ReliabilitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_RELIABILITY_", extra="ignore")

    lease_ms: int = Field(15_000, description="In-progress lease; a crashed attempt runs again after it.")
    completed_ttl_s: int = Field(7 * 24 * 3600, description="How long a completed event's reply is kept.")
    in_progress_ttl_s: int = Field(24 * 3600, description="How long an unfinished record is kept.")
    max_rate_wait_ms: int = Field(1_000, description="Wait within a request for a provider's rate slot.")
    max_ambiguous_tries: int = Field(4, description="Deliveries before an unconfirmed send ends outcome_unknown.")

    def idempotency(self) -> IdempotencyConfig:
        return IdempotencyConfig(self.lease_ms, self.completed_ttl_s * 1000, self.in_progress_ttl_s * 1000,
                                 self.max_rate_wait_ms, self.max_ambiguous_tries)
