import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jwt.utils import base64url_decode, base64url_encode

from adapters.security.jwt_tokens import JwtAccessTokens
from application.ports.security import AccessClaims, InvalidToken
from domain.user import Role

SECRET = "a-test-secret-long-enough-for-hs512-too-" + "0123456789abcdef" * 2
NOW = datetime(2030, 1, 1, tzinfo=UTC)
T = int(NOW.timestamp())
USER_ID = uuid4()
TOKENS = JwtAccessTokens(SECRET)
LEEWAY = 10
DROP = object()


def claims(**changes: object) -> dict[str, Any]:
    """Valid user-token claims at NOW, with some replaced (or removed with DROP)."""
    base: dict[str, Any] = {
        "iss": "creditgate",
        "sub": str(USER_ID),
        "role": "client",
        "jti": "j1",
        "iat": T,
        "exp": T + 900,
        "typ": "access",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not DROP}


def sign(payload: dict[str, Any], *, key: str = SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers or None)


def with_role_changed(token: str, role: str) -> str:
    header, payload, signature = token.split(".")
    tampered = json.loads(base64url_decode(payload)) | {"role": role}
    return ".".join([header, base64url_encode(json.dumps(tampered).encode()).decode(), signature])


FORGED = {
    "alg none": jwt.encode(claims(), "", algorithm="none"),
    "HS512 with the same key": sign(claims(), algorithm="HS512"),
    "HS256 with another key": sign(claims(), key="another-secret-of-at-least-32-bytes-012345"),
    "role changed, signature kept": with_role_changed(sign(claims()), "admin"),
    "exp in the past": sign(claims(iat=T - 1000, exp=T - 100)),
    "iat in the future": sign(claims(iat=T + 60, exp=T + 960)),
    "nbf in the future": sign(claims(nbf=T + 60)),
    "missing exp": sign(claims(exp=DROP)),
    "missing iat": sign(claims(iat=DROP)),
    "missing jti": sign(claims(jti=DROP)),
    "missing sub": sign(claims(sub=DROP)),
    "missing typ": sign(claims(typ=DROP)),
    "bad typ": sign(claims(typ="refresh")),
    "unknown kid": sign(claims(), kid="k1"),
    "key_access without key": sign(claims(typ="key_access")),
    "access with key": sign(claims(key="ck_1")),
    "another issuer": sign(claims(iss="elsewhere")),
    "unknown role": sign(claims(role="root")),
    "sub not a uuid": sign(claims(sub="admin")),
    "iat not an integer": sign(claims(iat=True)),
    "exp beyond the calendar": sign(claims(exp=10**20)),
}


def test_the_unforged_baseline_is_accepted() -> None:
    assert TOKENS.decode(sign(claims()), NOW).user_id == USER_ID


@pytest.mark.parametrize("token", FORGED.values(), ids=FORGED.keys())
def test_a_forged_token_is_invalid(token: str) -> None:
    with pytest.raises(InvalidToken):
        TOKENS.decode(token, NOW)


@pytest.mark.parametrize("garbage", ["", ".", "..", "a.b.c", "x" * 1_000_000, "ä.ö.ü", "\ud800", "\x00"])
def test_garbage_is_an_invalid_token(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        TOKENS.decode(garbage, NOW)


@given(st.text())
def test_any_text_is_an_invalid_token(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        TOKENS.decode(garbage, NOW)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=5,
)


@given(st.dictionaries(st.sampled_from([*claims(), "nbf", "key"]), json_values))
def test_odd_claims_under_our_own_signature_never_raise_anything_but_invalid_token(payload: dict[str, Any]) -> None:
    token = jwt.api_jws.encode(json.dumps(claims() | payload).encode(), SECRET, algorithm="HS256")

    with contextlib.suppress(InvalidToken):
        TOKENS.decode(token, NOW)


def test_an_access_token_lives_fifteen_minutes() -> None:
    issued = TOKENS.issue(user_id=USER_ID, role=Role.CLIENT, api_key=None, now=NOW)
    payload = jwt.decode(issued.token, options={"verify_signature": False})

    assert payload["exp"] - payload["iat"] == 900
    assert issued.expires_in == 900


def test_an_access_token_is_accepted_one_second_before_expiry() -> None:
    issued = TOKENS.issue(user_id=USER_ID, role=Role.CLIENT, api_key=None, now=NOW)

    TOKENS.decode(issued.token, NOW + timedelta(seconds=899))


def test_an_access_token_is_rejected_once_the_leeway_has_passed() -> None:
    issued = TOKENS.issue(user_id=USER_ID, role=Role.CLIENT, api_key=None, now=NOW)

    with pytest.raises(InvalidToken):
        TOKENS.decode(issued.token, NOW + timedelta(seconds=900 + LEEWAY + 1))


@pytest.mark.parametrize(("role", "api_key"), [(Role.ADMIN, None), (Role.CLIENT, "ck_123")])
def test_issued_tokens_decode_to_their_claims(role: Role, api_key: str | None) -> None:
    issued = TOKENS.issue(user_id=USER_ID, role=role, api_key=api_key, now=NOW)
    header = jwt.get_unverified_header(issued.token)
    typ = jwt.decode(issued.token, options={"verify_signature": False})["typ"]

    decoded = TOKENS.decode(issued.token, NOW)

    assert header == {"alg": "HS256", "typ": "JWT"}
    assert typ == ("access" if api_key is None else "key_access")
    assert decoded == AccessClaims(
        user_id=USER_ID,
        role=role,
        token_id=decoded.token_id,
        issued_at=NOW,
        expires_at=NOW + timedelta(seconds=900),
        api_key=api_key,
    )
    assert (
        decoded.token_id
        != TOKENS.decode(TOKENS.issue(user_id=USER_ID, role=role, api_key=api_key, now=NOW).token, NOW).token_id
    )
