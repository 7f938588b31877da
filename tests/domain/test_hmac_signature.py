import hashlib
import hmac
import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.hmac_signature import WINDOW_SECONDS, SignedLogin

api_keys = st.text(string.ascii_letters + string.digits + "_", min_size=8, max_size=40).map(lambda s: f"ak_{s}")
usernames = st.text(string.ascii_letters + string.digits + "_.-", min_size=3, max_size=64)
timestamps = st.integers(min_value=0, max_value=10**10)
nonces = st.text(string.ascii_letters + string.digits + "_-", min_size=16, max_size=64)
secrets = st.text(string.ascii_letters + string.digits + "_-", min_size=32, max_size=64)
logins = st.builds(SignedLogin, api_key=api_keys, username=usernames, timestamp=timestamps, nonce=nonces)


@settings(max_examples=500)
@given(login=logins, secret=secrets)
def test_a_valid_signature_verifies(login: SignedLogin, secret: str) -> None:
    assert login.verify(secret, login.sign(secret))


@given(login=logins, secret=secrets)
def test_the_signature_is_the_spec_formula(login: SignedLogin, secret: str) -> None:
    message = f"{login.api_key}\n{login.username}\n{login.timestamp}\n{login.nonce}".encode()
    assert login.sign(secret) == hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _mutate(text: str, position: int, replacement: str) -> str:
    index = position % len(text)
    return text[:index] + replacement + text[index + 1 :]


@settings(max_examples=500)
@given(
    login=logins,
    secret=secrets,
    field=st.sampled_from(["api_key", "username", "timestamp", "nonce", "signature"]),
    position=st.integers(min_value=0),
    replacement=st.characters(codec="ascii"),
)
def test_any_one_character_mutation_fails(
    login: SignedLogin, secret: str, field: str, position: int, replacement: str
) -> None:
    signature = login.sign(secret)
    if field == "signature":
        mutated_signature = _mutate(signature, position, replacement)
        assume(mutated_signature != signature)
        assert not login.verify(secret, mutated_signature)
        return
    original = str(getattr(login, field))
    mutated = _mutate(original, position, replacement)
    assume(mutated != original)
    if field == "timestamp":
        assume(mutated.isdigit() and int(mutated) != login.timestamp)
        forged = SignedLogin(login.api_key, login.username, int(mutated), login.nonce)
    else:
        forged = SignedLogin(**{**_fields(login), field: mutated})
    assert not forged.verify(secret, signature)


def _fields(login: SignedLogin) -> dict[str, object]:
    return {"api_key": login.api_key, "username": login.username, "timestamp": login.timestamp, "nonce": login.nonce}


@settings(max_examples=1000)
@given(a=logins, b=logins)
def test_the_canonical_message_is_injective(a: SignedLogin, b: SignedLogin) -> None:
    assume(a != b)
    assert a.message() != b.message()


def test_the_window_is_exact_in_both_directions() -> None:
    now = 1_800_000_000
    for delta in (-WINDOW_SECONDS, 0, WINDOW_SECONDS):
        assert SignedLogin("ak_x", "user", now + delta, "n" * 16).is_fresh(now)
    for delta in (-WINDOW_SECONDS - 1, WINDOW_SECONDS + 1):
        assert not SignedLogin("ak_x", "user", now + delta, "n" * 16).is_fresh(now)


@given(st.text(max_size=80))
def test_a_garbage_signature_never_raises(signature: str) -> None:
    login = SignedLogin("ak_x", "user", 1, "n" * 16)
    assert login.verify("secret" * 6, signature) is (signature == login.sign("secret" * 6))
