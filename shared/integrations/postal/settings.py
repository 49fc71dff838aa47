"""Settings of the postal integration (`DVCI_POSTAL_*`): carriers per purpose, the agency's sender
address, labels, tracking; one class per carrier (`DVCI_POSTAL_VNPOST_*`, `DVCI_POSTAL_VIETTELPOST_*`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.integrations.registry import sandbox_url


class PostalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_POSTAL_", extra="ignore")

    carriers_result_delivery: str = Field("vnpost", description="BCCI: VietnamPost only (no failover)")
    carriers_dossier_pickup: str = Field("vnpost", description="BCCI: VietnamPost only (no failover)")
    carriers_other: str = Field("vnpost,viettelpost", description="cheapest quote first, failover")
    sender_name: str = "Bộ phận Một cửa — UBND (sandbox)"
    sender_phone: str = "02438223344"
    sender_address_line: str = "1 Hoàng Hoa Thám"
    sender_province_code: str = "01"
    sender_ward_code: str = "00004"
    sender_email: str | None = None
    label_bucket: str = Field("dvci-postal-labels", description="object storage bucket of the label PDFs")
    s3_endpoint_url: str | None = Field(None, validation_alias="S3_ENDPOINT_URL")
    lock_ms: int = Field(20_000, description="per-shipment lock while an order is being created")
    shipment_ttl_s: int = Field(400 * 24 * 3600, description="how long shipment records are kept")
    poll_page_size: int = Field(200, description="VietnamPost tracking feed page size")
    poll_max_pages: int = Field(20, description="pages read per postal-poll run")
    stale_after_s: int = Field(6 * 3600, description="active shipments with no news this long are queried")
    stale_batch: int = Field(50, description="per-order queries per postal-poll run")


class VnpostSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_POSTAL_VNPOST_", extra="ignore")

    url: str = Field(default_factory=lambda: sandbox_url("/vnpost"))
    username: str = "sandbox"
    password: SecretStr = SecretStr("sandbox")
    customer_code: str = "DVCSANDBOX"
    timeout_s: float = 5.0


class ViettelpostSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_POSTAL_VIETTELPOST_", extra="ignore")

    url: str = Field(default_factory=lambda: sandbox_url("/viettelpost/v2"))
    username: str = "sandbox"
    password: SecretStr = SecretStr("sandbox")
    timeout_s: float = 5.0
    webhook_secret: SecretStr | None = Field(None, description="shared secret Viettel Post sends in `Authorization` "
                                                               "(required outside dev/test)")
    webhook_allow_ips: str = ""
