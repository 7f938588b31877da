from typing import Annotated, Any, ClassVar

import msgspec

from application import examples
from application.accounts.policy import AccountPolicy, seconds_until_next_window, window_start
from application.accounts.sessions import SessionTokens
from application.ports.clock import Clock
from application.ports.persistence import StoredCredentials, ThrottleCounter, UnitOfWork, UserRepository
from application.ports.security import PasswordHasher
from application.views import TokenPair
from domain.errors import RateLimited, Unauthenticated
from domain.user import Principal


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    default_detail = "Unknown username or wrong password."


class Credentials(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]

    example: ClassVar[dict[str, Any]] = {"username": examples.USERNAME, "password": examples.PASSWORD}


class LoginUser:
    """Exchange username and password for a token pair. Failures are counted per username and per address;
    over the limit every attempt (even a correct one) answers 429 until the window ends."""

    def __init__(
        self,
        users: UserRepository,
        hasher: PasswordHasher,
        throttle: ThrottleCounter,
        sessions: SessionTokens,
        uow: UnitOfWork,
        clock: Clock,
        policy: AccountPolicy,
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._throttle = throttle
        self._sessions = sessions
        self._uow = uow
        self._clock = clock
        self._policy = policy

    async def __call__(self, credentials: Credentials, *, client_address: str) -> TokenPair:
        """The attempt is counted before the password is checked (and given back when it succeeds), so a burst
        of concurrent attempts evaluates at most the limit."""
        now = self._clock.now()
        window = window_start(now, self._policy.login_window)
        limits = self._limits(credentials.username, client_address)
        if limits:
            if not await self._throttle.take(limits, window):
                raise RateLimited(seconds_until_next_window(now, self._policy.login_window))
            await self._uow.commit()
        stored = await self._verify(credentials)
        if stored is None:
            raise InvalidCredentials
        if limits:
            await self._throttle.release(list(limits), window)
        principal = Principal(user_id=stored.user.id, role=stored.user.role)
        pair = await self._sessions.start(principal, sessions_valid_after=stored.sessions_valid_after)
        await self._uow.commit()
        return pair

    def _limits(self, username: str, client_address: str) -> dict[str, int]:
        if not self._policy.login_failure_limit:
            return {}
        return {
            f"login:user:{username.lower()}": self._policy.login_failure_limit,
            f"login:addr:{client_address}": self._policy.address_failure_limit,
        }

    async def _verify(self, credentials: Credentials) -> StoredCredentials | None:
        stored = await self._users.credentials(credentials.username)
        if stored is None:
            await self._hasher.verify_dummy(credentials.password)
            return None
        if not await self._hasher.verify(stored.password_hash, credentials.password) or not stored.user.is_active:
            return None
        if self._hasher.needs_rehash(stored.password_hash):
            await self._users.set_password_hash(stored.user.id, await self._hasher.hash(credentials.password))
        return stored
