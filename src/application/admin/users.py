from typing import Any, ClassVar
from uuid import UUID

import msgspec

from application.ports.persistence import PageRequest, UnitOfWork, UserRepository, WalletLedger
from application.views import TransactionPage, UserPage, UserView
from domain.errors import NotFound
from domain.user import Role


class UserPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: Role | None = None
    is_active: bool | None = None

    example: ClassVar[dict[str, Any]] = {"is_active": True}


class UserNotFound(NotFound):
    default_detail = "No such user."


class ListUsers:
    """Every account, oldest first."""

    def __init__(self, users: UserRepository) -> None:
        self._users = users

    async def __call__(self, page: PageRequest) -> UserPage:
        return UserPage.of(await self._users.accounts(page))


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
    """Change a user's role or deactivate them; a deactivated user's tokens stop working at once."""

    def __init__(self, users: UserRepository, uow: UnitOfWork, get_user: GetUser) -> None:
        self._users = users
        self._uow = uow
        self._get_user = get_user

    async def __call__(self, user_id: UUID, patch: UserPatch) -> UserView:
        if not await self._users.update(user_id, role=patch.role, is_active=patch.is_active):
            raise UserNotFound
        await self._uow.commit()
        return await self._get_user(user_id)


class ListUserTransactions:
    """A user's ledger, newest first."""

    def __init__(self, ledger: WalletLedger, get_user: GetUser) -> None:
        self._ledger = ledger
        self._get_user = get_user

    async def __call__(self, user_id: UUID, page: PageRequest) -> TransactionPage:
        await self._get_user(user_id)
        return TransactionPage.of(await self._ledger.entries(user_id, page))
