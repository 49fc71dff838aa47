"""Viettel MySign remote signing (docs/providers.md): OAuth-ish login (token cached until it expires),
certificates/info, signHash (async: returns transactionId), requests/status. Our transaction id goes in
`documents[0].document_id` as the client reference the provider de-duplicates on.

Status codes (assumed where the public material is silent): "1" signed, "0" pending, "2" rejected by the
official, "3" expired.
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

NAME = "mysign"
SHA256_OID = "2.16.840.1.101.3.4.2.1"
RSA_OID = "1.2.840.113549.1.1.1"


class MySign:
    name = NAME

    def __init__(self, settings: SigningSettings | None = None):
        self.s = settings or signing_settings()
        self._token: dict[str, tuple[str, float]] = {}

    def _base(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"client_id": self.s.mysign_client_id,
                "client_secret": self.s.mysign_client_secret.get_secret_value(), **body}

    async def _call(self, path: str, body: dict[str, Any], token: str | None = None) -> Any:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        status, raw = await transport.request(NAME, "POST", f"{self.s.mysign_url.rstrip('/')}/{path}",
                                              body=orjson.dumps(body), headers=headers,
                                              timeout_s=self.s.mysign_timeout_s, kind="signing")
        if status in (401, 403) and token:
            raise _Expired()
        if status >= 500:
            raise ProviderUnavailable(NAME, f"HTTP {status}")
        try:
            reply = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ProviderAmbiguous(NAME, f"unreadable reply (HTTP {status})") from exc
        if status == 404:
            raise ProviderRejected(NAME, "key_not_found", str(reply.get("message", ""))[:200])
        if status >= 400:
            raise ProviderRejected(NAME, "invalid_document", f"HTTP {status}: {str(reply)[:200]}")
        return reply

    async def _login(self, user_id: str) -> str:
        cached = self._token.get(user_id)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        reply = await self._call("ras/v1/login", self._base({"user_id": user_id,
                                                             "profile_id": self.s.mysign_profile_id}))
        token = str(reply["access_token"])
        self._token[user_id] = (token, time.monotonic() + float(reply.get("expires_in", 3600)) - 60)
        return token

    async def _authed(self, user_id: str, path: str, body: dict[str, Any]) -> Any:
        try:
            return await self._call(path, body, await self._login(user_id))
        except _Expired:
            self._token.pop(user_id, None)
            return await self._call(path, body, await self._login(user_id))

    async def certificate(self, user_id: str, credential_id: str | None) -> RemoteCertificate:
        from asn1crypto import x509

        creds = await self._authed(user_id, "certificates/info", self._base({
            "profile_id": self.s.mysign_profile_id, "user_id": user_id, "certificates": "chain",
            "certInfo": True, "authInfo": True}))
        if credential_id:
            creds = [c for c in creds if c.get("credential_id") == credential_id]
        if not creds:
            raise ProviderRejected(NAME, "key_not_found", "the official has no signing credential")
        c = creds[0]
        chain = [x509.Certificate.load(base64.b64decode(b)) for b in c["cert"]["certificates"]]
        return RemoteCertificate(chain[0], chain[1:], str(c["credential_id"]))

    async def request(self, transaction_id: str, user_id: str, credential_id: str, digest: bytes,
                      description: str) -> str:
        reply = await self._authed(user_id, "signHash", self._base({
            "credentialID": credential_id, "numSignatures": 1,
            "documents": [{"document_id": transaction_id, "document_name": description[:100]}],
            "hash": [base64.b64encode(digest).decode()], "hashAlgo": SHA256_OID, "signAlgo": RSA_OID,
            "async": 1, "user_id": user_id}))
        return str(reply["transactionId"])

    async def status(self, transaction_id: str, provider_ref: str) -> RemoteResult:
        reply = await self._call("requests/status", {"transactionId": provider_ref})
        return _result(reply)

    def parse_webhook(self, body: bytes) -> tuple[str, RemoteResult]:
        data = orjson.loads(body)
        return str(data["document_id"]), _result(data)


class _Expired(Exception):
    pass


def _result(reply: dict[str, Any]) -> RemoteResult:
    status = str(reply.get("status", "0"))
    if status == "1":
        sigs = reply.get("signatures") or []
        if not sigs:
            raise ProviderAmbiguous(NAME, "done without a signature")
        return RemoteResult("signed", base64.b64decode(sigs[0]))
    if status == "2":
        return RemoteResult("rejected", detail=str(reply.get("message", "rejected by the official"))[:200])
    if status == "3":
        return RemoteResult("expired", detail="MySign: expired")
    return RemoteResult("pending")
