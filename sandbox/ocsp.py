"""OCSP responder and CRLs of the test PKI.

    POST /ocsp/                 application/ocsp-request -> application/ocsp-response (responder DIR/ocsp.pem)
    GET  /ocsp/{base64 request} the same over GET (RFC 6960 A.1)
    GET  /ocsp/crl/ca.crl       CRL of the issuing CA;  GET /ocsp/crl/root.crl  CRL of the root
    POST /ocsp/_sandbox/revoke  {"serial": N}: revoke a certificate now (tests)

Certificates in pki.json's `revoked` list answer `revoked`; every other serial `good`.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from sandbox.base import Handler, Simulator
from sandbox.signing_pki import SandboxPki


class OcspSimulator(Simulator):
    name = "ocsp"

    def __init__(self, pki: SandboxPki | None = None, **kw: Any):
        super().__init__(**kw)
        self.pki = pki or SandboxPki()
        self.extra_revoked: dict[int, dt.datetime] = {}

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/", self.handle_post), ("POST", "", self.handle_post),
                ("GET", "/crl/{name}", self.crl), ("POST", "/_sandbox/revoke", self.revoke),
                ("GET", "/{req}", self.handle_get)]

    def _revoked(self) -> dict[int, dt.datetime]:
        out = {s: dt.datetime.fromisoformat(r["at"]) for s, r in self.pki.revoked().items()}
        out.update(self.extra_revoked)
        return out

    async def revoke(self, request: web.Request) -> web.Response:
        serial = int((await request.json())["serial"])
        self.extra_revoked[serial] = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
        return web.json_response({"revoked": serial})

    async def handle_post(self, request: web.Request) -> web.Response:
        return self._answer(await request.read())

    async def handle_get(self, request: web.Request) -> web.Response:
        try:
            raw = base64.b64decode(request.match_info["req"])
        except ValueError:
            return web.Response(status=400, text="not base64")
        return self._answer(raw)

    def _answer(self, raw: bytes) -> web.Response:
        try:
            req = ocsp.load_der_ocsp_request(raw)
        except ValueError:
            self.receive(None, {"error": "malformed"})
            resp = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
            return web.Response(body=resp.public_bytes(serialization.Encoding.DER),
                                content_type="application/ocsp-response")
        serial = req.serial_number
        revoked = self._revoked()
        self.receive(str(serial), {"serial": serial, "status": "revoked" if serial in revoked else "good"})
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        responder, key = self.pki.cert("ocsp"), self.pki.key("ocsp")
        if serial in revoked:
            status, rev_at, reason = ocsp.OCSPCertStatus.REVOKED, revoked[serial], x509.ReasonFlags.key_compromise
        else:
            status, rev_at, reason = ocsp.OCSPCertStatus.GOOD, None, None
        builder = (ocsp.OCSPResponseBuilder()
                   .add_response_by_hash(req.issuer_name_hash, req.issuer_key_hash, serial, req.hash_algorithm,
                                         status, now - dt.timedelta(minutes=1), now + dt.timedelta(hours=12),
                                         rev_at, reason)
                   .responder_id(ocsp.OCSPResponderEncoding.HASH, responder).certificates([responder]))
        try:
            nonce = req.extensions.get_extension_for_class(x509.OCSPNonce)
            builder = builder.add_extension(nonce.value, critical=False)
        except x509.ExtensionNotFound:
            pass
        resp = builder.sign(key, hashes.SHA256())
        return web.Response(body=resp.public_bytes(serialization.Encoding.DER),
                            content_type="application/ocsp-response")

    async def crl(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ("ca.crl", "root.crl"):
            return web.Response(status=404)
        issuer = name.removesuffix(".crl")
        cert, key = self.pki.cert(issuer), self.pki.key(issuer)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        b = (x509.CertificateRevocationListBuilder().issuer_name(cert.subject)
             .last_update(now - dt.timedelta(minutes=1)).next_update(now + dt.timedelta(days=1))
             .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False))
        if issuer == "ca":
            for serial, at in self._revoked().items():
                b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                              .revocation_date(at).build())
        self.receive(name, {"crl": name})
        crl = b.sign(key, hashes.SHA256())
        return web.Response(body=crl.public_bytes(serialization.Encoding.DER), content_type="application/pkix-crl")
