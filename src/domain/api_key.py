from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from domain.credits import Credits
from domain.errors import Conflict, Forbidden, NotEnoughCredit, NotFound, Unauthenticated


class KeyRevoked(Unauthenticated):
    code = "key_revoked"
    default_detail = "This API key was revoked."


class SubscriptionInactive(Forbidden):
    code = "subscription_inactive"
    default_detail = "The key's subscription is not active (expired or suspended)."


class KeyCreditLimit(NotEnoughCredit):
    code = "key_credit_limit"
    default_detail = "This key reached its credit limit."


class KeyNotFound(NotFound):
    default_detail = "No such API key."


class KeyIsRevoked(Conflict):
    code = "key_revoked"
    default_detail = "This API key was revoked; a revoked key cannot change."


class KeyStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


def subscription_status(status: KeyStatus, expires_at: datetime, now: datetime) -> SubscriptionStatus:
    """Revoked wins over suspended, which wins over expired: the most final state is reported."""
    if status is KeyStatus.REVOKED:
        return SubscriptionStatus.REVOKED
    if status is KeyStatus.SUSPENDED:
        return SubscriptionStatus.SUSPENDED
    return SubscriptionStatus.ACTIVE if now < expires_at else SubscriptionStatus.EXPIRED


@dataclass(frozen=True, slots=True)
class ApiKey:
    api_key: str
    user_id: UUID
    typeid: str
    name: str | None
    status: KeyStatus
    expires_at: datetime
    credit_limit: Credits | None
    created_at: datetime

    def subscription(self, now: datetime) -> SubscriptionStatus:
        return subscription_status(self.status, self.expires_at, now)
