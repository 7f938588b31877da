from typing import Any, ClassVar
from uuid import UUID

import msgspec

from application.accounts.sessions import session_cutoff
from application.generations.views import GenerationPage
from application.ports.clock import Clock
from application.ports.generations import GenerationRecords
from application.ports.persistence import PageRequest, RefreshTokenStore, UnitOfWork, UserRepository, WalletLedger
from application.ports.security import IdentityProvider
from application.views import TransactionPage, UserPage, UserView
from domain.user import LastAdmin, Role, UserNotFound


class UserPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: Role | None = None
    is_active: bool | None = None

    example: ClassVar[dict[str, Any]] = {"is_active": True}


class ListUsers:
    """Every account, oldest first."""

    def __init__(self, users: UserRepository) -> None:
        self._users = users

    async def __call__(self, page: PageRequest, *, username_contains: str | None = None) -> UserPage:
        return UserPage.of(await self._users.accounts(page, username_contains=username_contains))


class GetUser:
    """One account with its balance."""

    def __init__(self, users: UserRepository) -> None:
        self._users = users

    async def __call__(self, user_id: UUID) -> UserView:
        account = await self._users.account(user_id)
        if account is None:
            raise UserNotFound
        return UserView.of(account)


class UpdateUser:
    """Change a user's role or deactivate them; a deactivated user's tokens stop working at once. An admin cannot
    demote or deactivate their own account, and the last active admin cannot be demoted or deactivated by anyone
    (409 `last_admin`), even by two admins removing each other at once."""

    def __init__(
        self,
        users: UserRepository,
        refresh_tokens: RefreshTokenStore,
        identity: IdentityProvider,
        uow: UnitOfWork,
        clock: Clock,
        get_user: GetUser,
    ) -> None:
        self._users = users
        self._refresh_tokens = refresh_tokens
        self._identity = identity
        self._uow = uow
        self._clock = clock
        self._get_user = get_user

    async def __call__(self, user_id: UUID, patch: UserPatch) -> UserView:
        """Deactivating or demoting also ends the user's sessions (their keys' included): every token issued
        before stays dead, so a reactivated user logs in afresh."""
        before = await self._get_user(user_id)
        if patch.role is Role.CLIENT or patch.is_active is False:
            await self._keep_an_admin(user_id)
        if not await self._users.update(user_id, role=patch.role, is_active=patch.is_active):
            raise UserNotFound
        deactivated = patch.is_active is False and before.is_active
        if deactivated or (patch.role is Role.CLIENT and before.role is Role.ADMIN):
            now = self._clock.now()
            await self._users.end_sessions(user_id, session_cutoff(now))
            await self._refresh_tokens.revoke_user(user_id, now)
        await self._uow.commit()
        return await self._get_user(user_id)

    async def _keep_an_admin(self, user_id: UUID) -> None:
        """The admins stay locked until the change commits, so a concurrent removal counts what this one left."""
        actor = await self._identity.current()
        admins = await self._users.lock_active_admins()
        if user_id not in admins:
            return
        if user_id == actor.user_id:
            raise LastAdmin("An admin cannot demote or deactivate their own account.")
        if len(admins) == 1:
            raise LastAdmin


class ListUserTransactions:
    """A user's ledger, newest first."""

    def __init__(self, ledger: WalletLedger, get_user: GetUser) -> None:
        self._ledger = ledger
        self._get_user = get_user

    async def __call__(self, user_id: UUID, page: PageRequest) -> TransactionPage:
        await self._get_user(user_id)
        return TransactionPage.of(await self._ledger.entries(user_id, page))


class ListUserGenerations:
    """A user's generations, newest first."""

    def __init__(self, records: GenerationRecords, get_user: GetUser) -> None:
        self._records = records
        self._get_user = get_user

    async def __call__(self, user_id: UUID, page: PageRequest) -> GenerationPage:
        await self._get_user(user_id)
        return GenerationPage.of(await self._records.of_user(user_id, page))
