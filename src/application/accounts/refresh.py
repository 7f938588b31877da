from typing import Annotated, Any, ClassVar

import msgspec

from application import examples
from application.accounts.sessions import SessionTokens
from application.ports.clock import Clock
from application.ports.persistence import RefreshTokenStore, RotationOutcome, UnitOfWork
from application.ports.security import InvalidToken, PrincipalReader
from application.views import TokenPair
from domain.api_key import SubscriptionStatus
from domain.errors import Unauthenticated


class TokenReused(Unauthenticated):
    code = "token_reused"
    default_detail = "This refresh token was already used; every token of its session is now revoked."


class RefreshRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]

    example: ClassVar[dict[str, Any]] = {"refresh_token": examples.REFRESH_TOKEN}


class RefreshSession:
    """Rotate a refresh token: each one works once. Presenting a used one again revokes its whole family
    (every refresh token of that login) and answers `token_reused`; clients must serialize their refreshes.
    A key-scoped token refreshes only while its key's subscription is active."""

    def __init__(
        self,
        refresh_tokens: RefreshTokenStore,
        principals: PrincipalReader,
        sessions: SessionTokens,
        uow: UnitOfWork,
        clock: Clock,
    ) -> None:
        self._refresh_tokens = refresh_tokens
        self._principals = principals
        self._sessions = sessions
        self._uow = uow
        self._clock = clock

    async def __call__(self, request: RefreshRequest) -> TokenPair:
        now = self._clock.now()
        rotation = await self._refresh_tokens.use(request.refresh_token, now)
        if rotation.outcome is RotationOutcome.REUSED and rotation.grant is not None:
            await self._refresh_tokens.revoke_family(rotation.grant.family_id, now)
            await self._uow.commit()
            raise TokenReused
        grant = rotation.grant
        if rotation.outcome is not RotationOutcome.ROTATED or grant is None:
            raise InvalidToken
        standing = await self._principals.standing(grant.user_id, grant.api_key, now)
        if standing is None or standing.subscription not in (None, SubscriptionStatus.ACTIVE):
            raise InvalidToken  # nothing is committed: the token is not consumed
        pair = await self._sessions.issue(
            standing.principal, family_id=grant.family_id, sessions_valid_after=standing.sessions_valid_after
        )
        await self._uow.commit()
        return pair


class Logout:
    """Revoke the refresh token's whole family. Unknown tokens are ignored: logging out twice is not an error."""

    def __init__(self, refresh_tokens: RefreshTokenStore, uow: UnitOfWork, clock: Clock) -> None:
        self._refresh_tokens = refresh_tokens
        self._uow = uow
        self._clock = clock

    async def __call__(self, request: RefreshRequest) -> None:
        family_id = await self._refresh_tokens.family_of(request.refresh_token)
        if family_id is not None:
            await self._refresh_tokens.revoke_family(family_id, self._clock.now())
            await self._uow.commit()
