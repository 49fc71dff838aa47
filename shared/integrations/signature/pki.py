"""A test PKI made by the project (never a real CA's key): `dvci pki init --dir DIR`.

DIR/root.pem            root CA (the trust anchor of dev and tests)
DIR/ca.pem              issuing CA (signs signers, the TSA and the OCSP responder)
DIR/tsa.pem, ocsp.pem   TSA (timeStamping, critical EKU) and OCSP responder (id-pkix-ocsp-nocheck) certificates
DIR/signer-<label>.pem  signer certificates whose keys live in the SoftHSM2 token only: `seal` (valid),
                        `expired` (expired a year ago), `revoked` (revoked yesterday)
DIR/remote-<user>.pem   + .key.pem: the officials the remote-signing sandboxes sign for
DIR/*.key.pem           CA/TSA/OCSP keys the sandboxes sign with (dev only)
DIR/softhsm2.conf       SoftHSM2 configuration (token directory DIR/tokens)
DIR/pki.json            what was made: base URL, token label, PIN, signer labels, revoked serials

Certificates carry the sandbox's OCSP and CRL URLs (`--base-url`, the sandbox server's address).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TOKEN_LABEL = "dvci-signing"
DEFAULT_PIN = "123456"  # sandbox PIN of the test token: obviously fake, works nowhere else
DEFAULT_SO_PIN = "12345678"
SIGNERS = ("seal", "expired", "revoked")
REMOTE_USERS = ("official",)
MODULE_CANDIDATES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                     "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so")


class PkiError(RuntimeError):
    pass


def softhsm_module() -> str:
    for path in MODULE_CANDIDATES:
        if os.path.exists(path):
            return path
    raise PkiError("libsofthsm2.so not found: run scripts/setup-system.sh (installs softhsm2)")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DVCI Test PKI (not a real CA)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass
class _Issuer:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey


def _issue(subject: str, public_key: Any, issuer: _Issuer | None, signing_key: rsa.RSAPrivateKey, *,
           ca: bool = False, not_before: dt.datetime, not_after: dt.datetime, serial: int,
           eku: list[x509.ObjectIdentifier] | None = None, eku_critical: bool = False,
           ocsp_url: str | None = None, crl_url: str | None = None, nocheck: bool = False,
           digital_signature: bool = True, non_repudiation: bool = False) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(_name(subject))
         .issuer_name(issuer.cert.subject if issuer else _name(subject))
         .public_key(public_key).serial_number(serial).not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
    if issuer is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                            critical=False)
    b = b.add_extension(x509.KeyUsage(
        digital_signature=digital_signature or not ca, content_commitment=non_repudiation, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False,
        decipher_only=False), critical=True)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=eku_critical)
    if ocsp_url:
        b = b.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]),
            critical=False)
    if crl_url:
        b = b.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_url)], relative_name=None, reasons=None,
            crl_issuer=None)]), critical=False)
    if nocheck:
        b = b.add_extension(x509.OCSPNoCheck(), critical=False)
    return b.sign(signing_key, hashes.SHA256())


def write_softhsm_conf(folder: Path) -> Path:
    tokens = folder / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
                    "slots.removable = false\n")
    return conf


def _init_token(conf: Path, label: str, pin: str, so_pin: str) -> None:
    util = shutil.which("softhsm2-util")
    if util is None:
        raise PkiError("softhsm2-util not found: run scripts/setup-system.sh (installs softhsm2)")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run([util, "--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", pin],
                   env=env, check=True, capture_output=True)


_KEYGEN = r"""
import json, sys
import pkcs11
from pkcs11 import Attribute, CertificateType, KeyType, ObjectClass
args = json.loads(sys.stdin.read())
lib = pkcs11.lib(args["module"])
token = lib.get_token(token_label=args["token"])
out = {}
with token.open(rw=True, user_pin=args["pin"]) as s:
    for i, label in enumerate(args["labels"], start=1):
        pub, _priv = s.generate_keypair(KeyType.RSA, 2048, id=bytes([i]), label=label, store=True,
                                        private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
        out[label] = {"n": hex(int.from_bytes(pub[Attribute.MODULUS], "big")),
                      "e": int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big"), "id": i}
    if args.get("certs"):
        for label, (der_hex, subj_hex, kid) in args["certs"].items():
            s.create_object({Attribute.CLASS: ObjectClass.CERTIFICATE,
                             Attribute.CERTIFICATE_TYPE: CertificateType.X_509, Attribute.TOKEN: True,
                             Attribute.LABEL: label, Attribute.ID: bytes([kid]),
                             Attribute.VALUE: bytes.fromhex(der_hex), Attribute.SUBJECT: bytes.fromhex(subj_hex)})
print(json.dumps(out))
"""

_STORE_CERTS = _KEYGEN.replace('args["labels"]', '[]')


def _token_call(script: str, conf: Path, args: dict[str, Any]) -> dict[str, Any]:
    """Talk to the token in a child process: a process loads one PKCS#11 module with one SOFTHSM2_CONF."""
    import sys

    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    res = subprocess.run([sys.executable, "-c", script], input=json.dumps(args), env=env, capture_output=True,
                         text=True, check=False)
    if res.returncode != 0:
        raise PkiError(f"token operation failed: {res.stderr.strip()[-500:]}")
    return dict(json.loads(res.stdout))


def init(folder: str | Path, *, base_url: str = "http://127.0.0.1:8900", pin: str = DEFAULT_PIN,
         so_pin: str = DEFAULT_SO_PIN, token_label: str = TOKEN_LABEL, force: bool = False) -> dict[str, Any]:
    """Create the test PKI in `folder` (see the module docstring); returns the pki.json manifest."""
    d = Path(folder).resolve()
    manifest_path = d / "pki.json"
    if manifest_path.exists() and not force:
        return dict(json.loads(manifest_path.read_text()))
    if d.exists() and force:
        shutil.rmtree(d)
    d.mkdir(parents=True, exist_ok=True)
    module = softhsm_module()
    base = base_url.rstrip("/")
    ocsp_url, ca_crl, root_crl = f"{base}/ocsp", f"{base}/ocsp/crl/ca.crl", f"{base}/ocsp/crl/root.crl"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    long_ago, far = now - dt.timedelta(days=3650), now + dt.timedelta(days=3650)
    serial = iter(range(1000, 10_000))

    root_key = _key()
    root = _issue("DVCI Test Root CA", root_key.public_key(), None, root_key, ca=True, not_before=long_ago,
                  not_after=far + dt.timedelta(days=3650), serial=next(serial))
    root_i = _Issuer(root, root_key)
    ca_key = _key()
    ca = _issue("DVCI Test Issuing CA", ca_key.public_key(), root_i, root_key, ca=True, not_before=long_ago,
                not_after=far, serial=next(serial), crl_url=root_crl)
    ca_i = _Issuer(ca, ca_key)
    tsa_key = _key()
    tsa = _issue("DVCI Test TSA", tsa_key.public_key(), ca_i, ca_key, not_before=long_ago, not_after=far,
                 serial=next(serial), eku=[ExtendedKeyUsageOID.TIME_STAMPING], eku_critical=True,
                 ocsp_url=ocsp_url, crl_url=ca_crl)
    ocsp_key = _key()
    ocsp = _issue("DVCI Test OCSP Responder", ocsp_key.public_key(), ca_i, ca_key, not_before=long_ago,
                  not_after=far, serial=next(serial), eku=[ExtendedKeyUsageOID.OCSP_SIGNING], nocheck=True)
    for name, cert, key in (("root", root, root_key), ("ca", ca, ca_key), ("tsa", tsa, tsa_key),
                            ("ocsp", ocsp, ocsp_key)):
        _write_cert(d / f"{name}.pem", cert)
        _write_key(d / f"{name}.key.pem", key)
    (d / "chain.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM)
                                  + root.public_bytes(serialization.Encoding.PEM))

    conf = write_softhsm_conf(d)
    _init_token(conf, token_label, pin, so_pin)
    pubs = _token_call(_KEYGEN, conf, {"module": module, "token": token_label, "pin": pin, "labels": list(SIGNERS)})
    revoked: list[dict[str, Any]] = []
    signers: dict[str, Any] = {}
    certs: dict[str, Any] = {}
    subjects = {"seal": "UBND Tỉnh Thử Nghiệm - Con dấu số", "expired": "Cán bộ Hết Hạn",
                "revoked": "Cán bộ Bị Thu Hồi"}
    for label in SIGNERS:
        pub = rsa.RSAPublicNumbers(pubs[label]["e"], int(pubs[label]["n"], 16)).public_key()
        if label == "expired":
            nb, na = now - dt.timedelta(days=730), now - dt.timedelta(days=365)
        else:
            nb, na = now - dt.timedelta(days=30), now + dt.timedelta(days=1095)
        s = next(serial)
        cert = _issue(subjects[label], pub, ca_i, ca_key, not_before=nb, not_after=na, serial=s,
                      ocsp_url=ocsp_url, crl_url=ca_crl, non_repudiation=True)
        _write_cert(d / f"signer-{label}.pem", cert)
        certs[label] = (cert.public_bytes(serialization.Encoding.DER).hex(),
                        cert.subject.public_bytes().hex(), pubs[label]["id"])
        signers[label] = {"cert": f"signer-{label}.pem", "serial": s, "key_id": pubs[label]["id"]}
        if label == "revoked":
            revoked.append({"serial": s, "at": (now - dt.timedelta(days=1)).isoformat(), "reason": "key_compromise"})
    _token_call(_STORE_CERTS, conf, {"module": module, "token": token_label, "pin": pin, "certs": certs})
    remote: dict[str, Any] = {}
    for user in REMOTE_USERS:
        key = _key()
        s = next(serial)
        cert = _issue("Nguyễn Văn Ký - Chuyên viên", key.public_key(), ca_i, ca_key,
                      not_before=now - dt.timedelta(days=30), not_after=now + dt.timedelta(days=1095),
                      serial=s, ocsp_url=ocsp_url, crl_url=ca_crl,
                      non_repudiation=True)
        _write_cert(d / f"remote-{user}.pem", cert)
        _write_key(d / f"remote-{user}.key.pem", key)
        remote[user] = {"cert": f"remote-{user}.pem", "key": f"remote-{user}.key.pem", "serial": s}
    manifest = {"created_at": now.isoformat(), "base_url": base, "module": module, "token_label": token_label,
                "pin": pin, "softhsm2_conf": str(conf), "signers": signers, "remote_users": remote,
                "revoked": revoked, "note": "test PKI made by dvci; never trust it outside dev and tests"}
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest


def load_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "pki.json"
    if not path.exists():
        raise PkiError(f"no test PKI in {folder}: run `dvci pki init --dir {folder}`")
    return dict(json.loads(path.read_text()))


def load_cert(path: str | Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def load_key(path: str | Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key
