import secrets
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import jwt
from jwt.types import Options

from application.ports.security import AccessClaims, AccessTokens, InvalidToken, IssuedAccessToken
from domain.user import Role

_ALGORITHM = "HS256"
_USER_TOKEN = "access"
_KEY_TOKEN = "key_access"
_OPTIONS: Options = {
    "require": ["exp", "iat", "jti", "sub", "typ", "iss", "role"],
    # Time is checked against the injected `now`, not the wall clock.
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
}


class JwtAccessTokens(AccessTokens):
    def __init__(
        self, secret: str, *, ttl_seconds: int = 900, issuer: str = "creditgate", leeway_seconds: int = 10
    ) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._issuer = issuer
        self._leeway = leeway_seconds

    def issue(self, *, user_id: UUID, role: Role, api_key: str | None, now: datetime) -> IssuedAccessToken:
        issued_at = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": str(user_id),
            "role": role.value,
            "jti": secrets.token_urlsafe(16),
            "iat": issued_at,
            "exp": issued_at + self._ttl,
            "typ": _USER_TOKEN if api_key is None else _KEY_TOKEN,
        }
        if api_key is not None:
            claims["key"] = api_key
        token = jwt.encode(claims, self._secret, algorithm=_ALGORITHM, headers={"typ": "JWT"})
        return IssuedAccessToken(token=token, expires_in=self._ttl)

    def decode(self, token: str, now: datetime) -> AccessClaims:
        try:
            return self._decode(token, now.timestamp())
        except (jwt.PyJWTError, ValueError, KeyError, TypeError, OverflowError) as error:
            raise InvalidToken from error

    def _decode(self, token: str, now: float) -> AccessClaims:
        decoded = jwt.decode_complete(
            token, self._secret, algorithms=[_ALGORITHM], issuer=self._issuer, options=_OPTIONS
        )
        if "kid" in decoded["header"]:
            raise InvalidToken
        claims: dict[str, Any] = decoded["payload"]
        issued_at, expires_at = _seconds(claims, "iat"), _seconds(claims, "exp")
        if now >= expires_at + self._leeway or issued_at > now + self._leeway:
            raise InvalidToken
        if "nbf" in claims and _seconds(claims, "nbf") > now + self._leeway:
            raise InvalidToken
        return AccessClaims(
            user_id=UUID(claims["sub"]),
            role=Role(claims["role"]),
            token_id=claims["jti"],
            issued_at=datetime.fromtimestamp(issued_at, UTC),
            expires_at=datetime.fromtimestamp(expires_at, UTC),
            api_key=_api_key(claims),
        )


def _seconds(claims: dict[str, Any], name: str) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int):  # this service issues whole seconds only
        raise TypeError(f"{name} must be an integer")
    return value


def _api_key(claims: dict[str, Any]) -> str | None:
    """A user token never carries `key`; a key-scoped token always does (RFC 8725 §3.12)."""
    typ, key = claims["typ"], claims.get("key")
    if typ == _USER_TOKEN and "key" not in claims:
        return None
    if typ == _KEY_TOKEN and isinstance(key, str) and key:
        return key
    raise InvalidToken
