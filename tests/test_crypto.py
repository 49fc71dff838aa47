"""Envelope encryption (AES-256-GCM, data keys wrapped by a local KEK or AWS KMS through moto), keyed blind
indexes, rotation (`dvci keys rotate` re-wraps what Redis holds, and the audit chain records it)."""

from __future__ import annotations

import base64
import os

import boto3
import pytest

from tests.conftest import MOTO, TEST_ENV


def _kek(**keys: bytes):
    from shared.security.crypto import LocalKek

    return LocalKek(dict(keys), next(reversed(keys)))


async def test_round_trip_tamper_and_context():
    from shared.security.crypto import Crypto, DecryptError

    c = Crypto(_kek(k1=os.urandom(32)))
    token = await c.encrypt(b"0912345678", b"sms.to")
    assert token.startswith("e1.k1.") and "0912345678" not in token
    assert await c.decrypt(token, b"sms.to") == b"0912345678"
    assert await c.encrypt(b"0912345678", b"sms.to") != token  # random nonce: equal plaintexts do not show
    with pytest.raises(DecryptError, match="authenticate"):
        await c.decrypt(token, b"other.record")  # bound to its record: not movable to another
    head, body = token.rsplit(".", 1)
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(DecryptError):
        await c.decrypt(head + "." + flipped, b"sms.to")
    with pytest.raises(DecryptError, match="not an encrypted value"):
        await c.decrypt("0912345678")


async def test_another_process_reads_with_the_kek_only_and_a_wrong_kek_cannot():
    from shared.security.crypto import Crypto, DecryptError

    key = os.urandom(32)
    token = await Crypto(_kek(k1=key)).encrypt(b"citizen@example.vn")
    assert await Crypto(_kek(k1=key)).decrypt(token) == b"citizen@example.vn"  # no key table needed
    with pytest.raises(DecryptError, match="does not unwrap"):
        await Crypto(_kek(k1=os.urandom(32))).decrypt(token)
    with pytest.raises(DecryptError, match="not configured"):
        await Crypto(_kek(k2=key)).decrypt(token)


def test_blind_index_is_keyed_and_separated_by_context():
    import hashlib

    from shared.security.crypto import CryptoSettings, blind_index

    a = CryptoSettings(env="x", blind_index_key=base64.b64encode(b"a" * 32).decode())
    b = CryptoSettings(env="x", blind_index_key=base64.b64encode(b"b" * 32).decode())
    ia = blind_index("sms.rcpt", "+84912345678", settings=a)
    assert ia == blind_index("sms.rcpt", "+84912345678", settings=a)  # deterministic: usable for lookups
    assert ia != blind_index("sms.rcpt", "+84912345678", settings=b)  # keyed
    assert ia != blind_index("email.address", "+84912345678", settings=a)  # per purpose
    assert ia not in (hashlib.sha256(b"+84912345678").hexdigest()[:32],
                      hashlib.sha256(b"rcpt:+84912345678").hexdigest()[:32])


def test_production_refuses_to_run_without_keys(monkeypatch):
    from shared.security.crypto import CryptoConfigError, CryptoSettings, LocalKek, blind_index
    from shared.security.seal import AuditSettings, signer

    with pytest.raises(CryptoConfigError, match="DVCI_KEK"):
        LocalKek.from_settings(CryptoSettings(env="production"))
    with pytest.raises(CryptoConfigError, match="DVCI_BLIND_INDEX_KEY"):
        blind_index("x", "y", settings=CryptoSettings(env="production"))
    with pytest.raises(CryptoConfigError, match="DVCI_AUDIT_SIGNING_KEY"):
        signer(AuditSettings(env="production"))
    monkeypatch.setenv("DVCI_REQUIRE_KEYS", "true")  # what the staging/production overlays set
    with pytest.raises(CryptoConfigError):
        LocalKek.from_settings(CryptoSettings(env="dev"))
    with pytest.raises(CryptoConfigError, match="32 bytes"):
        LocalKek.from_settings(CryptoSettings(env="dev", kek=base64.b64encode(b"short").decode()))


@pytest.fixture(scope="session")
def kms_key(moto_server):
    return boto3.client("kms", endpoint_url=MOTO).create_key(Description="dvci test KEK")["KeyMetadata"]["KeyId"]


async def test_kms_wraps_the_data_keys(kms_key):
    from shared.security.crypto import Crypto, CryptoSettings, KmsKek, kek_from_settings

    kek = kek_from_settings(CryptoSettings(env="x", kms_key_id=kms_key, kms_endpoint_url=MOTO))
    assert isinstance(kek, KmsKek)
    c = Crypto(kek)
    tokens = [await c.encrypt(f"0912{i:06d}".encode()) for i in range(20)]
    assert all(t.startswith(f"e1.{kms_key}.") for t in tokens)
    fresh = Crypto(KmsKek(kms_key, MOTO))  # another process: KMS unwraps the data key once
    assert [await fresh.decrypt(t) for t in tokens] == [f"0912{i:06d}".encode() for i in range(20)]


async def test_rotate_rewraps_everything_in_redis_and_is_audited(redis, monkeypatch, capsys):
    """Data written under KEK k1; the operator switches to k2 (k1 kept as previous), rotates: every
    value is re-wrapped under k2 and reads with k2 alone; the rotation is in the audit chain."""
    from dvci import cli
    from shared.security.crypto import Crypto, CryptoSettings, LocalKek
    from shared.security.seal import show
    from shared.storage.redis import Keys, resolve_url

    k1, k2 = base64.b64encode(os.urandom(32)).decode(), base64.b64encode(os.urandom(32)).decode()
    keys = Keys(TEST_ENV)
    old = Crypto(LocalKek.from_settings(CryptoSettings(env=TEST_ENV, kek=k1, kek_id="k1")))
    await redis.set(keys.key("t", "s"), await old.encrypt(b"0912345678", b"ctx-s"), ex=600)
    await redis.hset(keys.key("t", "h"), mapping={"to": await old.encrypt(b"+84912345678", b"ctx-h"),
                                                  "plain": "x"})
    monkeypatch.setenv("REDIS_URL", resolve_url())
    monkeypatch.setenv("DVCI_KEK", k2)
    monkeypatch.setenv("DVCI_KEK_ID", "k2")
    monkeypatch.setenv("DVCI_KEK_PREVIOUS", f"k1:{k1}")
    args = cli.build_parser().parse_args(["keys", "rotate", "--reason", "yearly rotation"])
    from shared.security.cli import _keys

    assert await _keys(args) == 0
    assert "re-wrapped 2 of 2 encrypted value(s) under k2" in capsys.readouterr().out
    only_k2 = Crypto(LocalKek.from_settings(CryptoSettings(env=TEST_ENV, kek=k2, kek_id="k2")))
    assert await only_k2.decrypt(await redis.get(keys.key("t", "s")), b"ctx-s") == b"0912345678"
    assert await only_k2.decrypt(await redis.hget(keys.key("t", "h"), "to"), b"ctx-h") == b"+84912345678"
    assert await redis.ttl(keys.key("t", "s")) > 0  # TTL kept
    assert await redis.hget(keys.key("t", "h"), "plain") == b"x"
    rows = await show(redis, keys, archive=False, action="keys.rotate")
    assert len(rows) == 1 and rows[0]["detail"]["reason"] == "yearly rotation" and rows[0]["subject"] == "k2"
