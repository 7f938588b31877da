from application.ports.clock import Clock
from application.ports.security import AccessTokens, PrincipalReader
from domain.errors import InvalidToken, Unauthenticated
from domain.user import Principal


class Authenticate:
    """A bearer token is valid when we signed it, it has not expired, and its user (and key) still may act:
    deactivation and key revocation take effect on the next request, on every instance."""

    def __init__(self, tokens: AccessTokens, principals: PrincipalReader, clock: Clock) -> None:
        self._tokens = tokens
        self._principals = principals
        self._clock = clock

    async def __call__(self, bearer_token: str | None) -> Principal:
        if not bearer_token:
            raise Unauthenticated
        claims = self._tokens.decode(bearer_token, self._clock.now())
        principal = await self._principals.principal(claims.user_id, claims.api_key)
        if principal is None:
            raise InvalidToken
        return principal
