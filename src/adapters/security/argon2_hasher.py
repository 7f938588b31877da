import secrets
from typing import Literal

import anyio
import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from application.ports.security import PasswordHasher

_PROFILES = {
    "rfc9106_low_memory": argon2.profiles.RFC_9106_LOW_MEMORY,
    "cheapest": argon2.profiles.CHEAPEST,  # tests only
}


class Argon2PasswordHasher(PasswordHasher):
    def __init__(self, hasher: argon2.PasswordHasher, *, max_concurrent: int = 4) -> None:
        """`max_concurrent` bounds the memory and CPU that a burst of logins can claim (64 MiB each by default)."""
        self._hasher = hasher
        self._limiter = anyio.CapacityLimiter(max_concurrent)
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(32))

    @classmethod
    def for_profile(cls, name: Literal["rfc9106_low_memory", "cheapest"]) -> "Argon2PasswordHasher":
        return cls(argon2.PasswordHasher.from_parameters(_PROFILES[name]))

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, password_hash: str, password: str) -> bool:
        try:
            return await anyio.to_thread.run_sync(self._hasher.verify, password_hash, password, limiter=self._limiter)
        except (VerificationError, InvalidHashError, UnicodeEncodeError):
            # UnicodeEncodeError: a non-ASCII hash, or a password with lone surrogates; neither can match.
            return False

    async def verify_dummy(self, password: str) -> None:
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
