"""Citizen data at rest: envelope encryption (AES-256-GCM) and keyed blind indexes.

    token = await crypto.encrypt(b"0912345678", aad=b"sms.to")      # "e1.<dek id>.<nonce|ciphertext>"
    plain = await crypto.decrypt(token, aad=b"sms.to")
    field = blind_index("sms.rcpt", "+84912345678")                  # HMAC-SHA256: lookups, never a bare hash

Data keys (DEKs, 256-bit, one per process and `DVCI_DEK_MAX_AGE_S`) encrypt the data; each travels with
the data wrapped by the key-encryption key (KEK): a local key from settings (`DVCI_KEK`, base64 of 32
bytes, id `DVCI_KEK_ID`) or an AWS KMS key (`DVCI_KMS_KEY_ID`). A token names the KEK id:
`e1.<kek id>.<wrapped data key>.<nonce|ciphertext>`. `rotate()` (`dvci keys rotate`) re-wraps every
stored value's data key under the current KEK (old KEKs stay readable through `DVCI_KEK_PREVIOUS` until
rotation is done) and starts a new data key. A process caches the data keys it unwrapped: after the first
use, encryption and decryption make no call to Redis or KMS.

With `DVCI_REQUIRE_KEYS=true` (staging and production overlays) or a production-like `DVCI_ENV`, a missing
KEK, blind-index key or audit signing key is an error at first use, never a published fallback.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.storage.redis import Keys

log = logging.getLogger("dvci.security")
PREFIX = "e1."
_NONCE = 12


class CryptoConfigError(RuntimeError):
    """A key is missing or malformed (refused at start, never replaced by a default)."""


class DecryptError(ValueError):
    """The token is not ours, was modified, or its data key is unknown."""


class CryptoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DVCI_", extra="ignore")

    env: str = "dev"
    kek: str | None = Field(None, description="Local key-encryption key: base64 of 32 random bytes (a Secret).")
    kek_id: str = Field("local-1", description="Id of DVCI_KEK, stored with every data key it wraps.")
    kek_previous: str = Field("", description="Older local KEKs still able to unwrap: 'id:base64,id:base64'.")
    kms_key_id: str | None = Field(None, description="AWS KMS key (id, ARN or alias) wrapping data keys instead.")
    kms_endpoint_url: str | None = None
    kms_region: str = "ap-southeast-1"
    blind_index_key: str | None = Field(None, description="HMAC key of blind indexes: base64 of 32 bytes.")
    dek_max_age_s: float = Field(86400.0, description="A data key encrypts new data for at most this long.")
    require_keys: bool = Field(False, description="Never fall back to development keys (staging, production).")


def dev_env(env: str) -> bool:
    """May keys fall back to development-only values (derived from the env name, logged)? Never when
    `DVCI_REQUIRE_KEYS` is true (the staging and production overlays set it) or the environment is named
    like production or staging."""
    import os as _os

    if _os.environ.get("DVCI_REQUIRE_KEYS", "").lower() in ("1", "true", "yes"):
        return False
    return not env.lower().startswith(("prod", "staging", "stage", "live"))


def _b64key(value: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError:
        raise CryptoConfigError(f"{name} is not base64") from None
    if len(raw) != 32:
        raise CryptoConfigError(f"{name} must be 32 bytes (base64), got {len(raw)}")
    return raw


def _dev_key(env: str, purpose: str) -> bytes:
    """The development-only key of `purpose` (the same in every dev/test environment and process)."""
    return hashlib.sha256(f"dvci-dev-only:{purpose}".encode()).digest()


# -- blind indexes ---------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _blind_key(env: str, configured: str | None) -> bytes:
    if configured:
        return _b64key(configured, "DVCI_BLIND_INDEX_KEY")
    if not dev_env(env):
        raise CryptoConfigError(f"DVCI_BLIND_INDEX_KEY is required in environment {env!r}")
    return _dev_key(env, "blind-index")


def blind_index(context: str, value: str, *, length: int = 32, settings: CryptoSettings | None = None) -> str:
    """Keyed digest of `value` for lookups (HMAC-SHA256 over context + NUL + value, hex, `length` chars)."""
    s = settings or crypto_settings()
    mac = hmac.new(_blind_key(s.env, s.blind_index_key), context.encode() + b"\x00" + value.encode(), hashlib.sha256)
    return mac.hexdigest()[:length]


# -- key-encryption keys ---------------------------------------------------------------------------
class Kek(Protocol):
    current_id: str

    async def wrap(self, dek: bytes) -> tuple[str, bytes]: ...
    async def unwrap(self, kek_id: str, wrapped: bytes) -> bytes: ...


class LocalKek:
    """AES-256-GCM key wrapping with keys from settings (current + previous ones)."""

    def __init__(self, keys: dict[str, bytes], current_id: str):
        self.keys, self.current_id = keys, current_id

    @classmethod
    def from_settings(cls, s: CryptoSettings) -> LocalKek:
        keys: dict[str, bytes] = {}
        for item in filter(None, (x.strip() for x in s.kek_previous.split(","))):
            kid, _, value = item.partition(":")
            keys[kid] = _b64key(value, f"DVCI_KEK_PREVIOUS[{kid}]")
        if s.kek:
            keys[s.kek_id] = _b64key(s.kek, "DVCI_KEK")
        elif dev_env(s.env):
            log.warning("DVCI_KEK unset: a development-only key is used (never in production)")
            keys[s.kek_id] = _dev_key(s.env, "kek:" + s.kek_id)
        else:
            raise CryptoConfigError(f"DVCI_KEK or DVCI_KMS_KEY_ID is required in environment {s.env!r}")
        return cls(keys, s.kek_id)

    async def wrap(self, dek: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE)
        return self.current_id, nonce + AESGCM(self.keys[self.current_id]).encrypt(nonce, dek, b"dvci-dek")

    async def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        key = self.keys.get(kek_id)
        if key is None:
            raise DecryptError(f"key-encryption key {kek_id!r} is not configured (DVCI_KEK / DVCI_KEK_PREVIOUS)")
        return AESGCM(key).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], b"dvci-dek")


class KmsKek:
    """AWS KMS wraps the data keys (boto3 in a thread; one call per data key per process)."""

    def __init__(self, key_id: str, endpoint_url: str | None = None, region: str = "ap-southeast-1"):
        self.current_id = key_id
        self.endpoint_url, self.region = endpoint_url, region
        self._client: Any = None

    def _kms(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("kms", endpoint_url=self.endpoint_url, region_name=self.region)
        return self._client

    async def wrap(self, dek: bytes) -> tuple[str, bytes]:
        reply = await asyncio.to_thread(self._kms().encrypt, KeyId=self.current_id, Plaintext=dek,
                                        EncryptionContext={"purpose": "dvci-dek"})
        return self.current_id, bytes(reply["CiphertextBlob"])

    async def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        reply = await asyncio.to_thread(self._kms().decrypt, CiphertextBlob=wrapped, KeyId=kek_id,
                                        EncryptionContext={"purpose": "dvci-dek"})
        return bytes(reply["Plaintext"])


def kek_from_settings(s: CryptoSettings) -> Kek:
    if s.kms_key_id:
        return KmsKek(s.kms_key_id, s.kms_endpoint_url, s.kms_region)
    return LocalKek.from_settings(s)


# -- envelope encryption ---------------------------------------------------------------------------
@dataclass(slots=True)
class _Dek:
    aead: AESGCM
    header: str  # "<kek id>.<wrapped data key, base64url>"
    created: float


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Crypto:
    """Envelope encryption. A token is self-contained: `e1.<kek id>.<wrapped data key>.<nonce|ciphertext>`,
    so reading it needs the KEK only (never a key table that could be lost with Redis). A process wraps one
    data key per `max_age_s` and caches the keys it unwrapped."""

    def __init__(self, kek: Kek, *, max_age_s: float = 86400.0, cache_size: int = 256):
        self.kek = kek
        self.max_age_s = max_age_s
        self.cache_size = cache_size
        self._current: _Dek | None = None
        self._unwrapped: dict[str, AESGCM] = {}

    async def _current_dek(self) -> _Dek:
        cur = self._current
        if cur is not None and time.time() - cur.created < self.max_age_s:
            return cur
        dek = AESGCM.generate_key(bit_length=256)
        kek_id, wrapped = await self.kek.wrap(dek)
        if "." in kek_id:
            raise CryptoConfigError(f"key-encryption key id {kek_id!r} must not contain '.'")
        cur = self._current = _Dek(AESGCM(dek), f"{kek_id}.{_b64(wrapped)}", time.time())
        self._unwrapped[cur.header] = cur.aead
        log.info("new data key", extra={"kek": kek_id})
        return cur

    async def _aead(self, header: str) -> AESGCM:
        aead = self._unwrapped.get(header)
        if aead is None:
            kek_id, wrapped = header.split(".", 1)
            try:
                aead = AESGCM(await self.kek.unwrap(kek_id, _unb64(wrapped)))
            except DecryptError:
                raise
            except Exception as exc:  # InvalidTag, KMS refusal
                raise DecryptError(f"data key does not unwrap under {kek_id!r}") from exc
            if len(self._unwrapped) >= self.cache_size:
                self._unwrapped.pop(next(iter(self._unwrapped)))
            self._unwrapped[header] = aead
        return aead

    @staticmethod
    def _split(token: str | bytes) -> tuple[str, str]:
        text = token.decode() if isinstance(token, bytes) else token
        parts = text.split(".")
        if len(parts) != 4 or parts[0] + "." != PREFIX:
            raise DecryptError("not an encrypted value")
        return parts[1] + "." + parts[2], parts[3]

    async def encrypt(self, plaintext: bytes, aad: bytes = b"") -> str:
        dek = await self._current_dek()
        nonce = os.urandom(_NONCE)
        return PREFIX + dek.header + "." + _b64(nonce + dek.aead.encrypt(nonce, plaintext, aad or None))

    async def decrypt(self, token: str | bytes, aad: bytes = b"") -> bytes:
        header, body = self._split(token)
        aead = await self._aead(header)
        raw = _unb64(body)
        try:
            return aead.decrypt(raw[:_NONCE], raw[_NONCE:], aad or None)
        except Exception as exc:  # InvalidTag: modified, or another record's context
            raise DecryptError("ciphertext does not authenticate (modified or wrong context)") from exc

    async def encrypt_json(self, obj: Any, aad: bytes = b"") -> str:
        return await self.encrypt(orjson.dumps(obj), aad)

    async def decrypt_json(self, token: str | bytes, aad: bytes = b"") -> Any:
        return orjson.loads(await self.decrypt(token, aad))

    def key_id(self, token: str | bytes) -> str:
        """The KEK id a token's data key is wrapped under."""
        return self._split(token)[0].split(".", 1)[0]

    async def rewrap(self, token: str | bytes) -> str:
        """The same ciphertext with its data key wrapped under the current KEK (data is not re-encrypted)."""
        header, body = self._split(token)
        if header.split(".", 1)[0] == self.kek.current_id:
            return token.decode() if isinstance(token, bytes) else token
        kek_id, wrapped = header.split(".", 1)
        try:
            dek = await self.kek.unwrap(kek_id, _unb64(wrapped))
        except DecryptError:
            raise
        except Exception as exc:
            raise DecryptError(f"data key does not unwrap under {kek_id!r}") from exc
        new_id, new_wrapped = await self.kek.wrap(dek)
        return f"{PREFIX}{new_id}.{_b64(new_wrapped)}.{body}"

    async def rotate(self, redis: Any, keys: Keys) -> dict[str, Any]:
        """Re-wrap every encrypted value of the environment (the project stores them as strings and hash
        fields) under the current KEK, and start a new data key. Each replacement is compare-and-set: a value
        written meanwhile is left alone."""
        self._current = None
        script = redis.register_script(_REWRAP)
        counts = {"keys": 0, "values": 0, "rewrapped": 0, "skipped": 0}
        cache: dict[str, str] = {}  # one unwrap/wrap per distinct data key
        async for raw in redis.scan_iter(match=keys.prefix + "*", count=1000):
            key = raw.decode() if isinstance(raw, bytes) else raw
            kind = await redis.type(key)
            kind = kind.decode() if isinstance(kind, bytes) else kind
            counts["keys"] += 1
            if kind == "string":
                items = [("", await redis.get(key))]
            elif kind == "hash":
                items = [(f.decode(), v) for f, v in (await redis.hgetall(key)).items()]
            else:
                continue
            for fld, value in items:
                if not value or not is_encrypted(value):
                    continue
                counts["values"] += 1
                old = value.decode()
                header, body = self._split(old)
                if header not in cache:
                    cache[header] = (await self.rewrap(old)).rsplit(".", 1)[0][len(PREFIX):]
                new = PREFIX + cache[header] + "." + body
                if new == old:
                    continue
                done = await script(keys=[key], args=[kind, fld, old, new])
                counts["rewrapped" if int(done) else "skipped"] += 1
        return {**counts, "kek": self.kek.current_id}


_REWRAP = """
if ARGV[1] == 'string' then
  if redis.call('GET', KEYS[1]) ~= ARGV[3] then return 0 end
  redis.call('SET', KEYS[1], ARGV[4], 'KEEPTTL')
  return 1
end
if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
return 1
"""


def is_encrypted(value: str | bytes) -> bool:
    return (value.decode(errors="replace") if isinstance(value, bytes) else value).startswith(PREFIX)


@lru_cache(maxsize=1)
def crypto_settings() -> CryptoSettings:
    return CryptoSettings()


_instances: dict[str, Crypto] = {}


def default_crypto(settings: CryptoSettings | None = None) -> Crypto:
    """The process's Crypto for its environment (KEK from settings; data keys in its Redis)."""
    s = settings or crypto_settings()
    inst = _instances.get(s.env)
    if inst is None:
        inst = _instances[s.env] = Crypto(kek_from_settings(s), max_age_s=s.dek_max_age_s)
    return inst


# -- what the reliability pipeline stores ----------------------------------------------------------
async def seal_reply(blob: bytes, record_key: str) -> str:
    """The reply kept in an idempotency record, encrypted and bound to that record (AAD = its key)."""
    return await default_crypto().encrypt(blob, record_key.encode())


async def open_reply(stored: bytes | str, record_key: str) -> bytes:
    """The stored reply back (records written before encryption pass through unchanged)."""
    if not is_encrypted(stored):
        return stored if isinstance(stored, bytes) else stored.encode()
    return await default_crypto().decrypt(stored, record_key.encode())


def keyed_fingerprint(fingerprint: str) -> str:
    """An event's request fingerprint as stored (keyed: the digest of a phone number + a known text must
    not be reversible by guessing)."""
    return blind_index("idem.fp", fingerprint)


async def seal_fields(fields: dict[str, str], names: tuple[str, ...], context: str) -> dict[str, str]:
    """`fields` with the values of `names` encrypted (AAD: context + field name)."""
    if not names:
        return fields
    crypto = default_crypto()
    return {k: (await crypto.encrypt(v.encode(), f"{context}:{k}".encode()) if k in names and v else v)
            for k, v in fields.items()}


async def open_field(value: str | bytes, name: str, context: str) -> str:
    if not value or not is_encrypted(value):
        return value.decode() if isinstance(value, bytes) else value
    return (await default_crypto().decrypt(value, f"{context}:{name}".encode())).decode()
