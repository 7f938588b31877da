from application.accounts.register import Registration
from application.ports.clock import Clock, IdGenerator
from application.ports.persistence import NewUser, UnitOfWork, UserRepository
from application.ports.security import PasswordHasher
from domain.user import Role, User


class CreateAdmin:
    """Create the admin, or promote (and reactivate) an existing user of that name, with this password."""

    def __init__(
        self, users: UserRepository, hasher: PasswordHasher, uow: UnitOfWork, clock: Clock, ids: IdGenerator
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._uow = uow
        self._clock = clock
        self._ids = ids

    async def __call__(self, registration: Registration) -> User:
        user = await self._users.promote_or_create_admin(
            NewUser(
                id=self._ids.new_id(),
                username=registration.username,
                email=registration.email,
                password_hash=await self._hasher.hash(registration.password),
                role=Role.ADMIN,
                created_at=self._clock.now(),
            )
        )
        await self._uow.commit()
        return user
