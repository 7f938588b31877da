from datetime import datetime
from uuid import UUID

from sqlalchemy import RowMapping, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.cursors import keyset_page
from adapters.postgres.tables import users, wallets
from application.ports.persistence import Account, NewUser, Page, PageRequest, StoredCredentials, UserRepository
from domain.credits import Credits
from domain.user import Role, User, UsernameTaken

USERNAME_INDEX = "uq_users_username_lower"


def _violated_constraint(error: IntegrityError) -> str | None:
    """asyncpg names the constraint (or unique index) on its own exception, which SQLAlchemy chains as the cause."""
    driver_error = error.orig.__cause__ if error.orig is not None else None
    return getattr(driver_error, "constraint_name", None)


def _user(m: RowMapping) -> User:
    return User(
        id=m["id"],
        username=m["username"],
        email=m["email"],
        role=Role(m["role"]),
        is_active=m["is_active"],
        created_at=m["created_at"],
    )


_USER_COLUMNS = (users.c.id, users.c.username, users.c.email, users.c.role, users.c.is_active, users.c.created_at)
_ACCOUNTS = select(*_USER_COLUMNS, wallets.c.balance).join(wallets, wallets.c.user_id == users.c.id)


def _account(m: RowMapping) -> Account:
    return Account(user=_user(m), balance=Credits(m["balance"]))


class PgUserRepository(UserRepository):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, user: NewUser) -> User:
        try:
            async with self._session.begin_nested():
                row = (
                    await self._session.execute(
                        insert(users)
                        .values(
                            id=user.id,
                            username=user.username,
                            email=user.email,
                            password_hash=user.password_hash,
                            role=user.role.value,
                            created_at=user.created_at,
                        )
                        .returning(*_USER_COLUMNS)
                    )
                ).one()
        except IntegrityError as error:
            if _violated_constraint(error) == USERNAME_INDEX:
                raise UsernameTaken from None
            raise
        await self._session.execute(insert(wallets).values(user_id=user.id, balance=0))
        return _user(row._mapping)

    async def credentials(self, username: str) -> StoredCredentials | None:
        row = (
            await self._session.execute(
                select(*_USER_COLUMNS, users.c.password_hash, users.c.sessions_valid_after).where(
                    func.lower(users.c.username) == username.lower()
                )
            )
        ).one_or_none()
        if row is None:
            return None
        return StoredCredentials(
            user=_user(row._mapping), password_hash=row.password_hash, sessions_valid_after=row.sessions_valid_after
        )

    async def account(self, user_id: UUID) -> Account | None:
        row = (await self._session.execute(_ACCOUNTS.where(users.c.id == user_id))).one_or_none()
        return None if row is None else _account(row._mapping)

    async def accounts(self, page: PageRequest, *, username_contains: str | None = None) -> Page[Account]:
        query = _ACCOUNTS
        if username_contains:
            query = query.where(users.c.username.icontains(username_contains, autoescape=True))
        return await keyset_page(self._session, query, page, keys=[users.c.created_at, users.c.id], item=_account)

    async def update(self, user_id: UUID, *, role: Role | None, is_active: bool | None) -> bool:
        changes = {
            name: value
            for name, value in (("role", role.value if role else None), ("is_active", is_active))
            if value is not None
        }
        if not changes:
            return await self._session.scalar(select(users.c.id).where(users.c.id == user_id)) is not None
        updated = update(users).where(users.c.id == user_id).values(**changes).returning(users.c.id)
        return (await self._session.execute(updated)).one_or_none() is not None

    async def end_sessions(self, user_id: UUID, valid_after: datetime) -> None:
        await self._session.execute(update(users).where(users.c.id == user_id).values(sessions_valid_after=valid_after))

    async def lock_active_admins(self) -> list[UUID]:
        admins = select(users.c.id).where(users.c.role == Role.ADMIN.value, users.c.is_active).with_for_update()
        return list((await self._session.scalars(admins)).all())

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        await self._session.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))

    async def promote_or_create_admin(self, user: NewUser) -> User:
        existing = await self.credentials(user.username)
        if existing is None:
            return await self.add(user)
        row = (
            await self._session.execute(
                update(users)
                .where(users.c.id == existing.user.id)
                .values(role=Role.ADMIN.value, is_active=True, password_hash=user.password_hash)
                .returning(*_USER_COLUMNS)
            )
        ).one()
        return _user(row._mapping)
