"""Keys in a PKCS#11 token (an HSM, a USB token, SoftHSM2 in dev and tests) through pyHanko.

Sessions are opened once per process and reused: a pool of `token_concurrency` logged-in sessions, one
signature at a time on each (PKCS#11 sessions are not for concurrent operations). The key never leaves
the token. The token unreachable (library error, token missing, session lost) is ProviderUnavailable
(the event is retried, 503); a key label absent from the token is ProviderRejected(`key_not_found`).
There is never another key: a different key is a different legal act.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shared.integrations.signature.settings import SigningSettings
from shared.reliability.errors import ProviderRejected, ProviderUnavailable

log = logging.getLogger("dvci.signing")
PROVIDER = "hsm"


class TokenPool:
    """Logged-in sessions on one token, opened lazily and reused; PKCS11Signer objects cached per label."""

    def __init__(self, settings: SigningSettings | None = None):
        from shared.integrations.signature.settings import signing_settings

        self.settings = settings or signing_settings()
        self.size = max(1, self.settings.token_concurrency)
        self._free: asyncio.Queue[Any] | None = None
        self._opened = 0
        self._open_lock = asyncio.Lock()
        self._signers: dict[tuple[int, str], Any] = {}
        self._chain: list[Any] | None = None

    def _open_session(self) -> Any:
        conf = self.settings.softhsm_conf()
        if conf and os.environ.get("SOFTHSM2_CONF") != conf:
            os.environ["SOFTHSM2_CONF"] = conf  # read by SoftHSM2 when the library is first initialised
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign.pkcs11 import open_pkcs11_session

        criteria = TokenCriteria(label=self.settings.token_label)
        return open_pkcs11_session(self.settings.module(), token_criteria=criteria,
                                   user_pin=self.settings.pin.get_secret_value())

    def chain(self) -> list[Any]:
        if self._chain is None:
            from shared.integrations.signature.certs import load_pem_bundle

            path = self.settings.intermediates_path
            self._chain = load_pem_bundle(path) if path.exists() else []
        return self._chain

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        if self._free is None:
            self._free = asyncio.Queue()
        session = None
        if self._free.empty() and self._opened < self.size:
            async with self._open_lock:
                if self._opened < self.size:
                    self._opened += 1
                    try:
                        session = await asyncio.to_thread(self._open_session)
                    except Exception as exc:
                        self._opened -= 1
                        raise ProviderUnavailable(PROVIDER, f"token {self.settings.token_label!r} unavailable: "
                                                            f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        if session is None:
            session = await self._free.get()
        broken = False
        try:
            yield session
        except ProviderRejected:
            raise
        except Exception as exc:
            if _is_token_failure(exc):
                broken = True
                raise ProviderUnavailable(PROVIDER, f"token operation failed: {type(exc).__name__}") from exc
            raise
        finally:
            if broken:
                self._drop(session)
            else:
                self._free.put_nowait(session)

    def _drop(self, session: Any) -> None:
        self._opened -= 1
        self._signers = {k: v for k, v in self._signers.items() if k[0] != id(session)}
        try:
            session.close()
        except Exception:
            log.debug("closing a broken PKCS#11 session failed", exc_info=True)

    async def signer(self, session: Any, key_label: str) -> Any:
        """The pyHanko signer for `key_label` on `session` (certificate read from the token once)."""
        cached = self._signers.get((id(session), key_label))
        if cached is not None:
            return cached
        from pyhanko.sign.pkcs11 import PKCS11Signer

        signer = PKCS11Signer(session, cert_label=key_label, key_label=key_label, ca_chain=self.chain(),
                              embed_roots=True)
        try:
            await signer.ensure_objects_loaded()
        except Exception as exc:
            if _is_token_failure(exc):
                raise
            raise ProviderRejected(PROVIDER, "key_not_found",
                                   f"no key and certificate labelled {key_label!r} on the token") from exc
        self._signers[(id(session), key_label)] = signer
        return signer

    def close(self) -> None:
        while self._free is not None and not self._free.empty():
            self._drop(self._free.get_nowait())


def _is_token_failure(exc: BaseException) -> bool:
    """A failure of the token itself (not of our data): pkcs11 errors other than 'no such object'."""
    try:
        import pkcs11.exceptions as p11x
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, p11x.NoSuchKey | p11x.MultipleObjectsReturned) or type(exc) is p11x.PKCS11Error:
        return False  # pyHanko's object look-ups raise the bare class: the label is not on the token
    return isinstance(exc, p11x.PKCS11Error)


_pools: dict[tuple[str, str, str], TokenPool] = {}


def token_pool(settings: SigningSettings) -> TokenPool:
    """One pool per (module, token, PIN) and process: sessions are opened once and reused."""
    key = (settings.pkcs11_module, settings.token_label, settings.pin.get_secret_value())
    pool = _pools.get(key)
    if pool is None:
        pool = _pools[key] = TokenPool(settings)
    return pool
