"""Passwords, tokens, the caller's identity and secret encryption, without cryptography: readable values that
keep each port's promises (a wrong password fails, a foreign or expired token is refused, a ciphertext opens only
on its own row and with a configured key)."""

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from application.ports.security import (
    AccessClaims,
    AccessTokens,
    IdentityProvider,
    InvalidToken,
    IssuedAccessToken,
    PasswordHasher,
    PrincipalReader,
    SecretCipher,
    Standing,
)
from domain.errors import Unauthenticated
from domain.user import Principal, Role
from tests.support.fakes.state import FakeDatabase


class FakePasswordHasher(PasswordHasher):
    """`scheme` plays the hash's parameters: a hash made under another scheme needs a rehash."""

    def __init__(self, scheme: str = "v1") -> None:
        self.scheme = scheme
        self.dummy_verifications = 0

    async def hash(self, password: str) -> str:
        return f"{self.scheme}${password[::-1]}"

    async def verify(self, password_hash: str, password: str) -> bool:
        _, _, reversed_password = password_hash.partition("$")
        return reversed_password == password[::-1]

    async def verify_dummy(self, password: str) -> None:
        self.dummy_verifications += 1

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith(f"{self.scheme}$")


class FakeAccessTokens(AccessTokens):
    """Tokens are serial numbers; the claims stay here. `iat` is whole seconds, as in a JWT."""

    def __init__(self, ttl: timedelta = timedelta(minutes=15)) -> None:
        self._ttl = ttl
        self._serial = itertools.count(1)
        self.issued: dict[str, AccessClaims] = {}

    def issue(self, *, user_id: UUID, role: Role, api_key: str | None, now: datetime) -> IssuedAccessToken:
        token = f"access-{next(self._serial)}"
        issued_at = now.replace(microsecond=0)
        self.issued[token] = AccessClaims(user_id, role, token, issued_at, issued_at + self._ttl, api_key)
        return IssuedAccessToken(token, int(self._ttl.total_seconds()))

    def decode(self, token: str, now: datetime) -> AccessClaims:
        claims = self.issued.get(token)
        if claims is None or now >= claims.expires_at:
            raise InvalidToken
        return claims


class FakePrincipalReader(PrincipalReader):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def standing(self, user_id: UUID, api_key: str | None, now: datetime) -> Standing | None:
        tables = self._db.tables
        user = tables.users.get(user_id)
        if user is None or not user.user.is_active:
            return None
        principal = Principal(user_id=user_id, role=user.user.role, api_key=api_key)
        if api_key is None:
            return Standing(principal, sessions_valid_after=user.sessions_valid_after)
        key = tables.keys.get(api_key)
        if key is None or key.key.user_id != user_id:
            return None
        cutoffs = [c for c in (user.sessions_valid_after, key.sessions_valid_after) if c is not None]
        return Standing(principal, key.key.subscription(now), max(cutoffs, default=None))


class FakeIdentity(IdentityProvider):
    """The caller a test acts as; like the real one it refuses a caller whose user is gone or inactive."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.principal: Principal | None = None

    def act_as(self, principal: Principal) -> None:
        self.principal = principal

    async def current(self) -> Principal:
        if self.principal is None:
            raise Unauthenticated
        user = self._db.tables.users.get(self.principal.user_id)
        if user is None or not user.user.is_active:
            raise InvalidToken
        return Principal(self.principal.user_id, user.user.role, self.principal.api_key)


class FakeCipher(SecretCipher):
    """`keys` as SECRET_KEYS lists them: the first encrypts, every one decrypts."""

    def __init__(self, keys: Sequence[str] = ("k1",)) -> None:
        self.keys = list(keys)

    def encrypt(self, plaintext: str, associated_data: str) -> bytes:
        return "\n".join((self.keys[0], associated_data, plaintext)).encode()

    def decrypt(self, ciphertext: bytes, associated_data: str) -> str | None:
        parts = ciphertext.decode(errors="replace").split("\n", 2)
        if len(parts) != 3:
            return None
        key, bound_to, plaintext = parts
        return plaintext if key in self.keys and bound_to == associated_data else None

    def needs_reencryption(self, ciphertext: bytes) -> bool:
        return not ciphertext.startswith(f"{self.keys[0]}\n".encode())
