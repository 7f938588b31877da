from application.ports.clock import Clock
from application.ports.security import AccessTokens, InvalidToken, PrincipalReader
from domain.errors import Unauthenticated
from domain.user import Principal


class Authenticate:
    """A bearer token is valid when we signed it, it has not expired, and its user (and key) still may act:
    deactivation, demotion, and a key's revocation, suspension or expiry take effect on the next request, on
    every instance; a token whose session was ended stays dead after a reactivation."""

    def __init__(self, tokens: AccessTokens, principals: PrincipalReader, clock: Clock) -> None:
        self._tokens = tokens
        self._principals = principals
        self._clock = clock

    async def __call__(self, bearer_token: str | None) -> Principal:
        if not bearer_token:
            raise Unauthenticated
        claims = self._tokens.decode(bearer_token, self._clock.now())
        standing = await self._principals.standing(claims.user_id, claims.api_key, self._clock.now())
        if standing is None:
            raise InvalidToken
        return standing.admit(claims.issued_at)
