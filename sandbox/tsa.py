"""RFC 3161 time-stamping authority for the test PKI.

    POST /tsa/   application/timestamp-query -> application/timestamp-reply (signed by DIR/tsa.pem)

Faults (`POST /tsa/_sandbox/faults`) make it unavailable: B-T and above must then fail as retryable.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.base import Handler, Simulator
from sandbox.signing_pki import SandboxPki


def _kept_key_stamper_class() -> Any:
    from datetime import datetime

    from asn1crypto import cms, core
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from pyhanko.sign import general
    from pyhanko.sign.general import get_pyca_cryptography_hash, simple_cms_attribute
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    class KeptKeyStamper(DummyTimeStamper):  # type: ignore[misc]
        """pyHanko's dummy TSA re-parses its key for every token (~40 ms); this one keeps it loaded."""

        loaded_key: Any = None

        def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str, dt: datetime) -> tuple[bytes, Any]:
            md = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
            md.update(tst_info_data)
            signed_attrs = cms.CMSAttributes([
                simple_cms_attribute("content_type", "tst_info"),
                simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
                simple_cms_attribute("signing_certificate", general.as_signing_certificate(self.tsa_cert)),
                simple_cms_attribute("message_digest", md.finalize())])
            signature = self.loaded_key.sign(signed_attrs.dump(), PKCS1v15(),
                                             get_pyca_cryptography_hash(md_algorithm.upper()))
            return signature, signed_attrs

    return KeptKeyStamper


class TsaSimulator(Simulator):
    name = "tsa"

    def __init__(self, pki: SandboxPki | None = None, **kw: Any):
        super().__init__(**kw)
        self.pki = pki or SandboxPki()
        self._stamper: Any = None

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/", self.handle), ("POST", "", self.handle)]

    def stamper(self) -> Any:
        if self._stamper is None:
            from asn1crypto import keys, x509
            from cryptography.hazmat.primitives import serialization
            _KeptKeyStamper = _kept_key_stamper_class()
            from pyhanko_certvalidator.registry import SimpleCertificateStore

            def a1(c: Any) -> x509.Certificate:
                return x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))

            key = self.pki.key("tsa").private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())
            store = SimpleCertificateStore.from_certs([a1(self.pki.cert("ca")), a1(self.pki.cert("root"))])
            self._stamper = _KeptKeyStamper(tsa_cert=a1(self.pki.cert("tsa")),
                                            tsa_key=keys.PrivateKeyInfo.load(key), certs_to_embed=store)
            self._stamper.loaded_key = self.pki.key("tsa")
        return self._stamper

    async def handle(self, request: web.Request) -> web.Response:
        from asn1crypto import tsp

        body = await request.read()
        try:
            req = tsp.TimeStampReq.load(body)
            digest = req["message_imprint"]["hashed_message"].native.hex()
        except (ValueError, TypeError, KeyError):
            self.receive(None, {"error": "malformed"})
            return web.Response(status=400, text="not a TimeStampReq")
        self.receive(digest, {"digest": digest})
        resp = await self.stamper().async_request_tsa_response(req)
        return web.Response(body=resp.dump(), content_type="application/timestamp-reply")
