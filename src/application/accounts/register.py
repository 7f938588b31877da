from typing import Annotated, Any, ClassVar

import msgspec

from application import examples
from application.accounts.policy import AccountPolicy, seconds_until_next_window, window_start
from application.patterns import EMAIL, whole
from application.ports.clock import Clock, IdGenerator
from application.ports.persistence import (
    Account,
    NewUser,
    Posting,
    ThrottleCounter,
    UnitOfWork,
    UserRepository,
    WalletLedger,
)
from application.ports.security import PasswordHasher
from application.views import UserView
from domain.credits import Credits
from domain.errors import RateLimited
from domain.user import Role
from domain.wallet import EntryKind

Username = Annotated[str, msgspec.Meta(min_length=3, max_length=64, pattern=whole(r"[A-Za-z0-9_.-]+"))]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=1024)]
Email = Annotated[str, msgspec.Meta(max_length=254, pattern=EMAIL)]


class Registration(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    username: Username
    password: Password
    email: Email | None = None

    example: ClassVar[dict[str, Any]] = {
        "username": examples.USERNAME,
        "password": examples.PASSWORD,
        "email": "ada@example.com",
    }


class RegisterUser:
    """Create a `client` account whose wallet starts at SIGNUP_CREDITS. Attempts are limited per address and
    counted before the (slow) password hash, so a burst of concurrent attempts never passes the limit; an attempt
    that fails (a taken username) still counts."""

    def __init__(
        self,
        users: UserRepository,
        ledger: WalletLedger,
        hasher: PasswordHasher,
        throttle: ThrottleCounter,
        uow: UnitOfWork,
        clock: Clock,
        ids: IdGenerator,
        policy: AccountPolicy,
    ) -> None:
        self._users = users
        self._ledger = ledger
        self._hasher = hasher
        self._throttle = throttle
        self._uow = uow
        self._clock = clock
        self._ids = ids
        self._policy = policy

    async def __call__(self, registration: Registration, *, client_address: str) -> UserView:
        now = self._clock.now()
        limit = self._policy.registrations_per_hour
        window = window_start(now, self._policy.registration_window)
        if limit:
            if not await self._throttle.take({f"register:addr:{client_address}": limit}, window):
                raise RateLimited(seconds_until_next_window(now, self._policy.registration_window))
            await self._uow.commit()
        user = await self._users.add(
            NewUser(
                id=self._ids.new_id(),
                username=registration.username,
                email=registration.email,
                password_hash=await self._hasher.hash(registration.password),
                role=Role.CLIENT,
                created_at=now,
            )
        )
        balance = Credits.zero()
        if self._policy.signup_credits.is_positive():
            entry = await self._ledger.post(
                Posting(
                    entry_id=self._ids.new_id(),
                    user_id=user.id,
                    kind=EntryKind.SIGNUP,
                    amount=self._policy.signup_credits,
                )
            )
            balance = entry.balance_after
        await self._uow.commit()
        return UserView.of(Account(user=user, balance=balance))
