"""Signing HMAC logins as a client of `POST /api/v1/auth` does."""

import secrets
import time
from typing import Any

from domain.hmac_signature import SignedLogin


def signed_login(
    api_key: str, username: str, secret: str, *, skew: int = 0, nonce: str | None = None
) -> dict[str, Any]:
    login = SignedLogin(api_key, username, int(time.time()) + skew, nonce or secrets.token_urlsafe(24))
    return {
        "api_key": login.api_key,
        "username": login.username,
        "timestamp": login.timestamp,
        "nonce": login.nonce,
        "signature": login.sign(secret),
    }
