from datetime import datetime
from typing import Annotated, Any, ClassVar

import msgspec

from application import examples
from application.accounts.policy import AccountPolicy, seconds_until_next_window, window_start
from application.accounts.sessions import SessionTokens
from application.ports.clock import Clock
from application.ports.persistence import ThrottleCounter, UnitOfWork, UserRepository
from application.ports.security import PasswordHasher
from application.views import TokenPair
from domain.errors import InvalidCredentials, TooManyRequests
from domain.user import Principal


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
        now = self._clock.now()
        window = window_start(now, self._policy.login_window)
        by_user = [f"login:user:{credentials.username.lower()}"]
        by_address = [f"login:addr:{client_address}"]
        await self._refuse_when_throttled(now, window, by_user, by_address)
        principal = await self._verify(credentials)
        if principal is None:
            if self._policy.login_failure_limit:
                await self._throttle.hit(by_user + by_address, window)
                await self._uow.commit()
            raise InvalidCredentials
        pair = await self._sessions.start(principal)
        await self._uow.commit()
        return pair

    async def _refuse_when_throttled(
        self, now: datetime, window: datetime, by_user: list[str], by_address: list[str]
    ) -> None:
        limit = self._policy.login_failure_limit
        if not limit:
            return
        if (
            await self._throttle.hits(by_user, window) >= limit
            or await self._throttle.hits(by_address, window) >= self._policy.address_failure_limit
        ):
            raise TooManyRequests(seconds_until_next_window(now, self._policy.login_window))

    async def _verify(self, credentials: Credentials) -> Principal | None:
        stored = await self._users.credentials(credentials.username)
        if stored is None:
            await self._hasher.verify_dummy(credentials.password)
            return None
        if not await self._hasher.verify(stored.password_hash, credentials.password) or not stored.user.is_active:
            return None
        if self._hasher.needs_rehash(stored.password_hash):
            await self._users.set_password_hash(stored.user.id, await self._hasher.hash(credentials.password))
        return Principal(user_id=stored.user.id, role=stored.user.role)
