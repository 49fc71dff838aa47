"""AES-256-GCM for what this kind keeps in Redis (citizen data, outbox payloads, tokens) and a keyed
hash for ids (audit, cache keys). The key comes from settings; `aad` binds a blob to its key name, so a
blob copied under another key does not decrypt."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class Sealer:
    def __init__(self, key: bytes):
        self._aead = AESGCM(key)
        self._hash_key = hmac.new(key, b"dvci-lgsp-id-hash", hashlib.sha256).digest()

    def seal(self, plaintext: bytes, aad: str = "") -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad.encode())

    def open(self, blob: bytes, aad: str = "") -> bytes:
        if not blob or blob[:1] != _VERSION:
            raise ValueError("not a sealed blob")
        return self._aead.decrypt(blob[1:13], blob[13:], aad.encode())

    def id_hash(self, value: str) -> str:
        """Keyed hash of a citizen id: the same id gives the same hash; without the key, no way back."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()[:32]


_sealers: dict[bytes, Sealer] = {}


def sealer(key: bytes | None = None) -> Sealer:
    if key is None:
        from shared.integrations.lgsp.settings import SyncSettings

        key = SyncSettings().key_bytes()
    s = _sealers.get(key)
    if s is None:
        s = _sealers[key] = Sealer(key)
    return s
