"""sign_document with the agency's key in SoftHSM2 (PKCS#11), the sandbox TSA and OCSP over real HTTP,
documents in moto's S3: PAdES B-B..B-LTA accepted by pyHanko's validator against the test root, refusals
before signing, XAdES B-T, verification, visible Vietnamese text, idempotency, the CLI."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import uuid

import boto3
import orjson
import pytest

from shared.integrations.signature.samples import sample_pdf, sample_xml
from tests.conftest import MOTO, ROOT, SIGN_PKI_DIR, TEST_ENV
from tests.helpers import binary, sdk_event

REQ = "vn.gov.dvc.document.sign.requested"
VERIFY = "vn.gov.dvc.document.verify.requested"
BUCKET = "dvci-documents"


def s3():
    return boto3.client("s3", endpoint_url=MOTO)


def put(data: bytes, suffix: str = "pdf") -> str:
    key = f"inbox/{uuid.uuid4().hex}.{suffix}"
    s3().put_object(Bucket=BUCKET, Key=key, Body=data)
    return key


def get(key: str) -> bytes:
    return s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()


EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # pyHanko's size probe


def stamps(sandbox) -> int:
    """Timestamps the TSA issued for real digests (pyHanko first asks once for a dummy, to size the CMS)."""
    return sum(n for digest, n in sandbox["tsa"].by_reference.items() if digest != EMPTY_SHA256)


def keys_under(prefix: str) -> list[str]:
    return [o["Key"] for o in s3().list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def request(key: str, *, label: str = "seal", level: str = "B-T", content_type: str = "application/pdf",
            dossier: str | None = None, **kw) -> dict:
    return {"dossier_id": dossier or f"H29-{uuid.uuid4().hex[:8]}",
            "document": {"s3_key": key, "content_type": content_type},
            "signer": {"method": "hsm", "key_label": label}, "level": level, **kw}


async def post(client, data, type_=REQ, **kw):
    h, b = binary(sdk_event(data, type_, **kw))
    return await client.post("/", headers=h, content=b)


def trust():
    from shared.integrations.signature import certs

    return certs.load_pem_bundle(SIGN_PKI_DIR / "root.pem"), certs.load_pem_bundle(SIGN_PKI_DIR / "chain.pem")


async def pyhanko_status(data: bytes):
    """pyHanko's own validator, trusting only the test root; files with a DSS are validated offline from it."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko_certvalidator import ValidationContext

    roots, chain = trust()
    reader = PdfFileReader(io.BytesIO(data))
    sig = reader.embedded_regular_signatures[0]
    if "/DSS" in reader.root:
        dss = DocumentSecurityStore.read_dss(reader)
        vc = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="hard-fail",
                               crls=[o.get_object().data for o in dss.crls],
                               ocsps=[o.get_object().data for o in dss.ocsps], other_certs=list(dss.load_certs()))
    else:
        vc = ValidationContext(trust_roots=roots, other_certs=chain, allow_fetching=True,
                               revocation_mode="hard-fail")
    try:
        return reader, await async_validate_pdf_signature(sig, vc, ts_validation_context=vc)
    finally:
        await vc.aclose()


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT", "B-LTA"])
async def test_pades_levels_are_accepted_by_pyhanko_against_the_test_root(sign_document, signing_sandbox, level):
    key = put(sample_pdf())
    resp = await post(sign_document, request(key, level=level, reason="Phê duyệt", location="Hà Nội"))
    assert resp.status_code == 200, resp.text
    assert resp.headers["ce-type"] == "vn.gov.dvc.document.signed"
    body = resp.json()
    assert body["level"] == level and body["output_key"].startswith("signed/")
    assert "UBND Tỉnh Thử Nghiệm" in body["signer"]["subject"]
    assert body["signed_at"].endswith("+07:00")
    signed = get(body["output_key"])
    import hashlib

    assert hashlib.sha256(signed).hexdigest() == body["sha256"]
    reader, status = await pyhanko_status(signed)
    assert status.intact and status.valid and status.trusted, status.summary()
    tsa_calls = stamps(signing_sandbox)
    if level == "B-B":
        assert status.timestamp_validity is None and "timestamp_at" not in body and tsa_calls == 0
    else:
        assert status.timestamp_validity is not None and status.timestamp_validity.trusted
        assert body["timestamp_at"].endswith("+07:00")
    if level in ("B-LT", "B-LTA"):
        from pyhanko.sign.validation.dss import DocumentSecurityStore

        dss = DocumentSecurityStore.read_dss(reader)
        assert dss.ocsps or dss.crls  # validation data embedded: valid offline (checked above)
    doc_ts = [s for s in reader.embedded_signatures if s.sig_object.get("/Type") == "/DocTimeStamp"]
    assert len(doc_ts) == (1 if level == "B-LTA" else 0)
    if level == "B-LTA":
        assert tsa_calls == 2  # the signature timestamp and the document timestamp


@pytest.mark.parametrize(("label", "reason"), [("expired", "certificate_expired"),
                                               ("revoked", "certificate_revoked"),
                                               ("nope", "key_not_found")])
async def test_expired_revoked_and_unknown_signers_are_refused_before_signing(sign_document, signing_sandbox,
                                                                            redis, label, reason):
    dossier = f"H29-{uuid.uuid4().hex[:8]}"
    resp = await post(sign_document, request(put(sample_pdf()), label=label, dossier=dossier))
    assert resp.status_code == 200
    assert resp.headers["ce-type"] == "vn.gov.dvc.document.sign.failed"
    assert resp.json()["reason"] == reason
    assert keys_under(f"signed/{dossier}/") == []
    assert signing_sandbox["tsa"].by_reference == {}  # nothing was signed, so nothing was timestamped
    from shared.integrations.signature import audit
    from shared.storage.redis import Keys

    entries = await audit.entries(redis, Keys(TEST_ENV))
    assert any(e["dossier_id"] == dossier and e["outcome"] == "refused" and reason in e["detail"] for e in entries)


async def test_tsa_down_is_retryable_never_a_silent_downgrade(sign_document, signing_sandbox):
    from sandbox.base import Faults

    dossier = f"H29-{uuid.uuid4().hex[:8]}"
    data = request(put(sample_pdf()), level="B-T", dossier=dossier)
    signing_sandbox["tsa"].faults = Faults(error_rate=1.0, status=503)
    resp = await post(sign_document, data, id_="tsa-down-1")
    assert resp.status_code == 503 and "retry-after" in resp.headers
    assert keys_under(f"signed/{dossier}/") == []
    signing_sandbox["tsa"].faults = None
    resp = await post(sign_document, data, id_="tsa-down-1")  # the broker's retry
    assert resp.status_code == 200 and resp.json()["level"] == "B-T" and resp.json()["timestamp_at"]
    assert len(keys_under(f"signed/{dossier}/")) == 1


async def test_redelivery_never_signs_twice(sign_document, signing_sandbox, redis):
    dossier = f"H29-{uuid.uuid4().hex[:8]}"
    data = request(put(sample_pdf()), dossier=dossier)
    first = await post(sign_document, data, id_="dup-1")
    again = await post(sign_document, data, id_="dup-1")
    assert first.status_code == again.status_code == 200 and first.content == again.content
    # the idempotency record gone (expired, or lost with a crash before completion): S3 answers
    idem = [k async for k in redis.scan_iter(match=f"dvci:{TEST_ENV}:{{signing*idem:*")]  # single node or cluster
    assert idem
    await redis.delete(*idem)
    third = await post(sign_document, data, id_="dup-1")
    assert third.status_code == 200 and third.json()["sha256"] == first.json()["sha256"]
    assert third.json()["signed_at"] == first.json()["signed_at"]
    assert len(keys_under(f"signed/{dossier}/")) == 1
    assert stamps(signing_sandbox) == 1  # signed (and timestamped) once


async def test_output_key_holding_another_document_is_never_overwritten(sign_document, signing_sandbox):
    s3().put_object(Bucket=BUCKET, Key="results/taken.pdf", Body=b"%PDF-1.7 someone else's")
    resp = await post(sign_document, request(put(sample_pdf()), output_key="results/taken.pdf"))
    assert resp.json()["reason"] == "invalid_document" and "another" in resp.json()["detail"]
    assert get("results/taken.pdf") == b"%PDF-1.7 someone else's"


async def test_verify_reports_a_tampered_pdf_invalid(sign_document, signing_sandbox):
    resp = await post(sign_document, request(put(sample_pdf()), level="B-T"))
    signed = get(resp.json()["output_key"])
    ok = await post(sign_document, {"s3_key": resp.json()["output_key"], "content_type": "application/pdf"}, VERIFY)
    assert ok.status_code == 200 and ok.headers["ce-type"] == "vn.gov.dvc.document.verified"
    report = ok.json()
    assert report["valid"] is True
    [sig] = report["signatures"]
    assert sig["intact"] and sig["trusted"] and sig["timestamp_valid"] and sig["level"] == "B-T"
    assert sig["modification"] == "none" and sig["problems"] == []
    i = signed.index(b"QUYET DINH so 123")
    tampered = signed[:i] + b"QUYET DINH so 999" + signed[i + 17:]
    bad = await post(sign_document, {"s3_key": put(tampered), "content_type": "application/pdf"}, VERIFY)
    report = bad.json()
    assert report["valid"] is False
    assert report["signatures"][0]["intact"] is False and report["signatures"][0]["problems"]


async def test_xades_b_t_verifies_and_tampering_is_detected(sign_document, signing_sandbox):
    resp = await post(sign_document, request(put(sample_xml(), "xml"), content_type="application/xml"))
    assert resp.status_code == 200 and resp.headers["ce-type"] == "vn.gov.dvc.document.signed", resp.text
    out = resp.json()["output_key"]
    assert out.endswith(".xml") and resp.json()["timestamp_at"]
    signed = get(out)
    assert b"SignatureTimeStamp" in signed and b"SigningCertificateV2" in signed
    ok = (await post(sign_document, {"s3_key": out, "content_type": "application/xml"}, VERIFY)).json()
    assert ok["valid"] is True
    assert ok["signatures"][0]["level"] == "B-T" and ok["signatures"][0]["timestamp_valid"] is True
    tampered = signed.replace("Cấp giấy phép".encode(), "Thu hồi giấy phép".encode())
    bad = (await post(sign_document, {"s3_key": put(tampered, "xml"), "content_type": "application/xml"},
                      VERIFY)).json()
    assert bad["valid"] is False and bad["signatures"][0]["intact"] is False


async def test_xml_with_entities_is_refused_without_resolving_them(sign_document, signing_sandbox):
    xxe = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'
    resp = await post(sign_document, request(put(xxe, "xml"), content_type="application/xml"))
    assert resp.json()["reason"] == "invalid_document" and "DOCTYPE" in resp.json()["detail"]
    resp = await post(sign_document, request(put(sample_xml(), "xml"), content_type="application/xml",
                                             level="B-LT"))
    assert resp.json()["reason"] == "invalid_document"


async def test_not_a_pdf_and_missing_document(sign_document, signing_sandbox):
    resp = await post(sign_document, request(put(b"hello", "pdf")))
    assert resp.json()["reason"] == "invalid_document"
    resp = await post(sign_document, request("inbox/missing.pdf"))
    assert resp.json()["reason"] == "invalid_document" and "no document" in resp.json()["detail"]


def pdftotext(path, page: int) -> str:
    assert shutil.which("pdftotext"), "poppler-utils missing: scripts/setup-system.sh installs it"
    return subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(path), "-"], capture_output=True,
                          check=True).stdout.decode()


async def test_visible_signature_text_is_extractable_with_its_diacritics(sign_document, signing_sandbox, tmp_path):
    resp = await post(sign_document, request(put(sample_pdf(pages=2)), level="B-B",
                                             appearance={"page": -1, "box": [300, 40, 580, 130],
                                                         "text": "Chức vụ: Chủ tịch UBND"}))
    assert resp.status_code == 200, resp.text
    path = tmp_path / "signed.pdf"
    path.write_bytes(get(resp.json()["output_key"]))
    last_page = pdftotext(path, 2)
    assert "Ký bởi: UBND Tỉnh Thử Nghiệm - Con dấu số" in last_page
    assert "Ngày ký:" in last_page and "Chức vụ: Chủ tịch UBND" in last_page
    first_page = pdftotext(path, 1)
    assert "Ký bởi" not in first_page
    _reader, status = await pyhanko_status(path.read_bytes())
    assert status.intact and status.trusted


async def test_token_unavailable_is_retryable_and_never_another_key(signing_pki):
    from shared.integrations.signature.pkcs11 import TokenPool
    from shared.integrations.signature.settings import SigningSettings
    from shared.reliability.errors import ProviderUnavailable

    pool = TokenPool(SigningSettings(token_label="no-such-token"))
    with pytest.raises(ProviderUnavailable, match="no-such-token"):
        async with pool.session():
            pass


async def test_every_signature_is_audited(sign_document, signing_sandbox, redis):
    import hashlib

    from shared.integrations.signature import audit
    from shared.storage.redis import Keys

    doc = sample_pdf("QUYET DINH so 77/QD-UBND")
    resp = await post(sign_document, request(put(doc), level="B-B"), source="/dvc/core/audit-test")
    body = resp.json()
    [entry] = [e for e in await audit.entries(redis, Keys(TEST_ENV)) if e["dossier_id"] == body["dossier_id"]]
    assert entry["document_sha256"] == hashlib.sha256(doc).hexdigest()
    assert entry["signer"]["serial"] == body["signer"]["serial"] and entry["level"] == "B-B"
    assert entry["requested_by"] == "/dvc/core/audit-test" and entry["output_key"] == body["output_key"]
    assert entry["at_ms"] > 0 and entry["method"] == "hsm"


async def test_cli_signs_and_verifies(signing_sandbox, tmp_path):
    src = tmp_path / "quyet-dinh.pdf"
    src.write_bytes(sample_pdf())
    out = tmp_path / "quyet-dinh.signed.pdf"
    env = {**os.environ}
    dvci = [sys.executable, "-m", "dvci.cli"]

    def run(*args: str):
        import asyncio

        return asyncio.to_thread(subprocess.run, [*dvci, *args], capture_output=True, text=True, env=env,
                                 cwd=ROOT)

    res = await run("sign", str(src), "--key", "seal", "--level", "B-T", "-o", str(out), "--visible")
    assert res.returncode == 0, res.stderr
    res = await run("sign", "verify", str(out), "--trust", str(SIGN_PKI_DIR / "root.pem"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "VALID" in res.stdout and "B-T" in res.stdout and "UBND Tỉnh Thử Nghiệm" in res.stdout
    data = out.read_bytes()
    i = data.index(b"QUYET DINH")
    (tmp_path / "bad.pdf").write_bytes(data[:i] + b"QUYET DINX" + data[i + 10:])
    res = await run("sign", "verify", str(tmp_path / "bad.pdf"))
    assert res.returncode == 1 and "INVALID" in res.stdout
    res = await run("sign", str(src), "--key", "revoked", "-o", str(tmp_path / "x.pdf"))
    assert res.returncode == 1 and "certificate_revoked" in res.stderr
    assert orjson.loads((SIGN_PKI_DIR / "pki.json").read_bytes())["signers"].keys() == {"seal", "expired", "revoked"}


async def test_dvci_pki_init_makes_the_test_pki_with_keys_only_in_the_token(tmp_path):
    import asyncio

    folder = tmp_path / "pki"
    res = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "dvci.cli", "pki", "init", "--dir",
                                                   str(folder), "--base-url", "http://127.0.0.1:9"],
                                  capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    for name in ("root.pem", "ca.pem", "tsa.pem", "ocsp.pem", "softhsm2.conf", "signer-seal.pem",
                 "signer-expired.pem", "signer-revoked.pem"):
        assert (folder / name).exists(), name
    assert not list(folder.glob("signer-*.key.pem"))  # signer keys were generated inside the token
    from cryptography import x509

    seal = x509.load_pem_x509_certificate((folder / "signer-seal.pem").read_bytes())
    aia = seal.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia[0].access_location.value == "http://127.0.0.1:9/ocsp"
    listing = await asyncio.to_thread(
        subprocess.run, ["pkcs11-tool", "--module", orjson.loads((folder / "pki.json").read_bytes())["module"],
                         "--token-label", "dvci-signing", "--login", "--pin", "123456", "-O"],
        capture_output=True, text=True, env={**os.environ, "SOFTHSM2_CONF": str(folder / "softhsm2.conf")})
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count("Private Key Object") == 3 and "never extractable" in listing.stdout
