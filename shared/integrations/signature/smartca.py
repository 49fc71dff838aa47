"""VNPT SmartCA remote signing (docs/providers.md): POST JSON, credentials in the body; signs a SHA-256
hash after the official confirms in the SmartCA app. Our transaction id is the client reference: the
provider (and its sandbox) de-duplicates a re-sent request under the same id.

    v1/credentials/get_certificate   -> user_certificates[{cert_id, serial_number, cert_data, chain_data}]
    v1/signatures/sign               -> {status_code: 200, message: "sig_wait_for_user_confirm", data: {tran_code}}
    v1/signatures/sign/{tran_code}/status -> data.status pending|signed|rejected|expired, data.signatures
    webhook                          -> {transaction_id, tran_code, status, signed_files: [{doc_id, signature_value}]}
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson

from shared.integrations import transport
from shared.integrations.signature import RemoteCertificate, RemoteResult
from shared.integrations.signature.settings import SigningSettings, signing_settings
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable

NAME = "smartca"


class SmartCa:
    name = NAME

    def __init__(self, settings: SigningSettings | None = None):
        self.s = settings or signing_settings()

    def _creds(self) -> dict[str, str]:
        return {"sp_id": self.s.smartca_sp_id, "sp_password": self.s.smartca_sp_password.get_secret_value()}

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, raw = await transport.request(
            NAME, "POST", f"{self.s.smartca_url.rstrip('/')}/{path}", body=orjson.dumps({**self._creds(), **body}),
            headers={"content-type": "application/json"}, timeout_s=self.s.smartca_timeout_s, kind="signing")
        try:
            reply = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if status >= 500:
                raise ProviderUnavailable(NAME, f"HTTP {status}") from exc
            raise ProviderAmbiguous(NAME, f"unreadable reply (HTTP {status})") from exc
        code = int(reply.get("status_code", status)) if isinstance(reply, dict) else status
        if code == 200:
            return dict(reply.get("data") or {})
        message = str(reply.get("message", ""))[:200] if isinstance(reply, dict) else ""
        if code == 403:
            reason = "certificate_revoked" if "revok" in message.lower() else "certificate_expired"
            raise ProviderRejected(NAME, reason, f"CREDENTIAL_STATUS_INVALID: {message}")
        if code == 401:
            raise ProviderUnavailable(NAME, f"SP_CREDENTIAL_INVALID: {message}")
        if code == 404:
            raise ProviderRejected(NAME, "key_not_found", f"no such user or certificate: {message}")
        if code >= 500:
            raise ProviderUnavailable(NAME, f"{code} {message}")
        raise ProviderRejected(NAME, "invalid_document", f"{code} {message}")

    async def certificate(self, user_id: str, credential_id: str | None) -> RemoteCertificate:
        from asn1crypto import x509

        data = await self._post("v1/credentials/get_certificate",
                                {"user_id": user_id, "serial_number": credential_id or "", "transaction_id": ""})
        certs = data.get("user_certificates") or []
        if credential_id:
            certs = [c for c in certs if credential_id in (c.get("serial_number"), c.get("cert_id"))]
        if not certs:
            raise ProviderRejected(NAME, "key_not_found", "the official has no signing certificate")
        c = certs[0]
        chain = [x509.Certificate.load(base64.b64decode(c["chain_data"][k]))
                 for k in ("ca_cert", "root_cert") if c.get("chain_data", {}).get(k)]
        return RemoteCertificate(x509.Certificate.load(base64.b64decode(c["cert_data"])), chain,
                                 str(c.get("serial_number") or c.get("cert_id")))

    async def request(self, transaction_id: str, user_id: str, credential_id: str, digest: bytes,
                      description: str) -> str:
        data = await self._post("v1/signatures/sign", {
            "user_id": user_id, "transaction_id": transaction_id, "transaction_desc": description[:200],
            "serial_number": credential_id, "time_stamp": time.strftime("%Y%m%d%H%M%SZ", time.gmtime()),
            "sign_files": [{"doc_id": transaction_id, "file_type": "pdf", "sign_type": "hash",
                            "data_to_be_signed": digest.hex()}]})
        return str(data.get("tran_code") or transaction_id)

    async def status(self, transaction_id: str, provider_ref: str) -> RemoteResult:
        data = await self._post(f"v1/signatures/sign/{provider_ref}/status", {"transaction_id": transaction_id})
        return _result(data.get("status"), data.get("signatures") or data.get("signed_files") or [])

    def parse_webhook(self, body: bytes) -> tuple[str, RemoteResult]:
        data = orjson.loads(body)
        return str(data["transaction_id"]), _result(data.get("status"), data.get("signed_files") or [])


def _result(status: Any, files: list[dict[str, Any]]) -> RemoteResult:
    status = str(status or "pending").lower()
    if status == "signed":
        value = next((f.get("signature_value") for f in files if f.get("signature_value")), None)
        if not value:
            raise ProviderAmbiguous(NAME, "signed without a signature value")
        return RemoteResult("signed", base64.b64decode(value))
    if status in ("rejected", "expired"):
        return RemoteResult(status, detail=f"SmartCA: {status}")  # type: ignore[arg-type]
    return RemoteResult("pending")
