from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from domain.errors import Conflict, NotFound


class UsernameTaken(Conflict):
    code = "username_taken"
    default_detail = "This username is taken."


class UserNotFound(NotFound):
    default_detail = "No such user."


class LastAdmin(Conflict):
    code = "last_admin"
    default_detail = "The last active admin cannot be demoted or deactivated."


class Role(StrEnum):
    CLIENT = "client"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    username: str
    email: str | None
    role: Role
    is_active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: the user (role as stored now, not as the token claimed) and the key, if any."""

    user_id: UUID
    role: Role
    api_key: str | None = None

    @property
    def is_admin(self) -> bool:
        """Admin powers come with a user session only; a key-scoped token never carries them."""
        return self.role is Role.ADMIN and self.api_key is None
