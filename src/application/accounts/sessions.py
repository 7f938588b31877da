from datetime import datetime, timedelta
from uuid import UUID

from application.accounts.policy import AccountPolicy
from application.ports.clock import Clock, IdGenerator
from application.ports.persistence import RefreshGrant, RefreshTokenStore
from application.ports.security import AccessTokens
from application.views import TokenPair
from domain.user import Principal


def session_cutoff(now: datetime) -> datetime:
    """When sessions are ended at `now`: access tokens carry whole-second `iat`s, so the cut-off is the next whole
    second (every token issued up to `now` is before it)."""
    return now.replace(microsecond=0) + timedelta(seconds=1)


class SessionTokens:
    """Issues access + refresh token pairs; a refresh keeps the family so reuse can revoke all of it."""

    def __init__(
        self,
        access_tokens: AccessTokens,
        refresh_tokens: RefreshTokenStore,
        clock: Clock,
        ids: IdGenerator,
        policy: AccountPolicy,
    ) -> None:
        self._access_tokens = access_tokens
        self._refresh_tokens = refresh_tokens
        self._clock = clock
        self._ids = ids
        self._policy = policy

    async def start(self, principal: Principal, *, sessions_valid_after: datetime | None) -> TokenPair:
        return await self.issue(principal, family_id=self._ids.new_id(), sessions_valid_after=sessions_valid_after)

    async def issue(self, principal: Principal, *, family_id: UUID, sessions_valid_after: datetime | None) -> TokenPair:
        """`sessions_valid_after` is the principal's: an access token issued in the second its sessions were ended
        is dated at that cut-off (up to a second ahead), so a fresh login right after a reactivation works."""
        now = self._clock.now()
        issued_at = now if sessions_valid_after is None else max(now, sessions_valid_after)
        access = self._access_tokens.issue(
            user_id=principal.user_id, role=principal.role, api_key=principal.api_key, now=issued_at
        )
        refresh = await self._refresh_tokens.issue(
            RefreshGrant(user_id=principal.user_id, family_id=family_id, api_key=principal.api_key),
            now=now,
            expires_at=now + self._policy.refresh_token_ttl,
        )
        return TokenPair(access_token=access.token, refresh_token=refresh, expires_in=access.expires_in)
