"""Settings of the signing integration (`DVCI_SIGN_*`). The PIN, provider credentials and webhook secrets
come from Secrets in production; the defaults are the sandbox's and work nowhere else."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.integrations.registry import sandbox_url

DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


class SigningSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_SIGN_", extra="ignore")

    pki_dir: str = Field(".dvci/pki", description="the test PKI (`dvci pki init --dir`); defaults below read it")
    pkcs11_module: str = Field("", description="PKCS#11 library; empty: the test PKI's (SoftHSM2)")
    softhsm2_conf: str = Field("", description="exported as SOFTHSM2_CONF; empty: DIR/softhsm2.conf if present")
    token_label: str = Field("dvci-signing", description="the token, selected by label (never by slot)")
    pin: SecretStr = Field(SecretStr("123456"), description="user PIN of the token (a Secret)")
    token_concurrency: int = Field(4, description="signatures at once per token (sessions opened once, reused)")
    trust_roots: str = Field("", description="PEM bundle of trust anchors; empty: DIR/root.pem")
    intermediates: str = Field("", description="PEM bundle of CA certificates to embed; empty: DIR/chain.pem")
    tsa_url: str = Field(default_factory=lambda: sandbox_url("/tsa/"), description="RFC 3161 TSA")
    tsa_timeout_s: float = 5.0
    revocation_timeout_s: float = 5.0
    cert_check_ttl_s: float = Field(300.0, description="how long a good signer-certificate check is reused")
    bucket: str = Field("dvci-documents", description="documents to sign and signed outputs")
    s3_endpoint_url: str | None = Field(None, validation_alias="S3_ENDPOINT_URL")
    max_document_bytes: int = 20 * 1024 * 1024
    font: str = Field(DEFAULT_FONT, description="TrueType font embedded in visible signatures (Vietnamese)")
    remote_timeout_s: float = Field(300.0, description="official's confirmation window; then user_timeout")
    smartca_url: str = Field(default_factory=lambda: sandbox_url("/smartca/sca/sp769"))
    smartca_sp_id: str = "sandbox-sp"
    smartca_sp_password: SecretStr = SecretStr("sandbox-sp-password")
    smartca_timeout_s: float = 5.0
    smartca_webhook_secret: SecretStr | None = Field(None, description="callback HMAC secret (not dev/test: required)")
    smartca_allow_ips: str = Field("", description="CIDRs allowed to post callbacks without a signature")
    mysign_url: str = Field(default_factory=lambda: sandbox_url("/mysign/vtss/service"))
    mysign_client_id: str = "sandbox-client"
    mysign_client_secret: SecretStr = SecretStr("sandbox-client-secret")
    mysign_profile_id: str = "adss:ras:profile:001"
    mysign_timeout_s: float = 5.0
    mysign_webhook_secret: SecretStr | None = Field(None, description="callback HMAC secret (not dev/test: required)")
    mysign_allow_ips: str = Field("", description="CIDRs allowed to post callbacks without a signature")

    def path(self, explicit: str, name: str) -> Path:
        return Path(explicit) if explicit else Path(self.pki_dir) / name

    @property
    def trust_roots_path(self) -> Path:
        return self.path(self.trust_roots, "root.pem")

    @property
    def intermediates_path(self) -> Path:
        return self.path(self.intermediates, "chain.pem")

    def module(self) -> str:
        if self.pkcs11_module:
            return self.pkcs11_module
        from shared.integrations.signature import pki

        return pki.softhsm_module()

    def softhsm_conf(self) -> str | None:
        if self.softhsm2_conf:
            return self.softhsm2_conf
        candidate = Path(self.pki_dir) / "softhsm2.conf"
        return str(candidate.resolve()) if candidate.exists() else None


@lru_cache(maxsize=1)
def signing_settings() -> SigningSettings:
    return SigningSettings()
