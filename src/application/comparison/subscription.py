from datetime import datetime
from typing import Any, ClassVar

import msgspec

from application import examples
from application.ports.clock import Clock
from application.ports.comparison import ApiKeys
from application.ports.security import IdentityProvider
from domain.api_key import ApiKey, KeyNotFound, SubscriptionStatus
from domain.user import Principal


class SubscriptionView(msgspec.Struct, frozen=True, kw_only=True):
    api_key: str
    status: SubscriptionStatus
    active: bool
    expires_at: datetime
    typeid: str

    example: ClassVar[dict[str, Any]] = {
        "api_key": examples.API_KEY,
        "status": "active",
        "active": True,
        "expires_at": examples.EXPIRES_AT,
        "typeid": examples.TYPEID,
    }


async def visible_key(keys: ApiKeys, principal: Principal, api_key: str) -> ApiKey:
    """The key when the caller owns it or is an admin; anyone else gets 404, as if it did not exist."""
    key = await keys.get(api_key)
    if key is None or (key.user_id != principal.user_id and not principal.is_admin):
        raise KeyNotFound
    return key


class GetSubscription:
    """A key's subscription: active while the key is neither suspended nor revoked and `expires_at` is ahead."""

    def __init__(self, keys: ApiKeys, identity: IdentityProvider, clock: Clock) -> None:
        self._keys = keys
        self._identity = identity
        self._clock = clock

    async def __call__(self, api_key: str) -> SubscriptionView:
        key = await visible_key(self._keys, await self._identity.current(), api_key)
        status = key.subscription(self._clock.now())
        return SubscriptionView(
            api_key=key.api_key,
            status=status,
            active=status is SubscriptionStatus.ACTIVE,
            expires_at=key.expires_at,
            typeid=key.typeid,
        )
