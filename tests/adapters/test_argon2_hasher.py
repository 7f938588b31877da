import threading
from typing import Literal

import argon2
import pytest
from argon2.low_level import Type

from adapters.security.argon2_hasher import Argon2PasswordHasher

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def hasher() -> Argon2PasswordHasher:
    return Argon2PasswordHasher.for_profile("cheapest")


@pytest.fixture(scope="module")
def production_hasher() -> Argon2PasswordHasher:
    return Argon2PasswordHasher.for_profile("rfc9106_low_memory")


async def test_a_hash_verifies_its_password_and_only_it(hasher: Argon2PasswordHasher) -> None:
    password_hash = await hasher.hash(PASSWORD)

    assert await hasher.verify(password_hash, PASSWORD)
    assert not await hasher.verify(password_hash, PASSWORD + "!")


async def test_hashes_are_argon2id(hasher: Argon2PasswordHasher) -> None:
    assert (await hasher.hash(PASSWORD)).startswith("$argon2id$")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=8,t=1,p=1$garbage",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$argon2id$é",
    ],
)
async def test_an_unreadable_hash_verifies_nothing(hasher: Argon2PasswordHasher, garbage: str) -> None:
    assert not await hasher.verify(garbage, PASSWORD)


async def test_the_production_profile_meets_the_owasp_minimums(production_hasher: Argon2PasswordHasher) -> None:
    parameters = argon2.extract_parameters(await production_hasher.hash(PASSWORD))

    assert parameters.type is Type.ID
    assert parameters.memory_cost >= 19456
    assert parameters.time_cost >= 2
    assert parameters.parallelism >= 1


async def test_a_weaker_hash_needs_rehashing_under_the_production_profile(
    hasher: Argon2PasswordHasher, production_hasher: Argon2PasswordHasher
) -> None:
    cheap_hash = await hasher.hash(PASSWORD)

    assert production_hasher.needs_rehash(cheap_hash)
    assert not hasher.needs_rehash(cheap_hash)


async def test_the_dummy_verify_runs_for_any_password(hasher: Argon2PasswordHasher) -> None:
    await hasher.verify_dummy(PASSWORD)
    await hasher.verify_dummy("")


async def test_hashing_and_verifying_leave_the_event_loop_thread() -> None:
    threads: list[int] = []

    class RecordingHasher(argon2.PasswordHasher):
        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            threads.append(threading.get_ident())
            return super().hash(password, salt=salt)

        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002
            threads.append(threading.get_ident())
            return super().verify(hash, password)

    hasher = Argon2PasswordHasher(RecordingHasher.from_parameters(argon2.profiles.CHEAPEST))
    threads.clear()  # the dummy hash is made by the constructor, before the event loop serves requests

    await hasher.verify(await hasher.hash(PASSWORD), PASSWORD)

    assert len(threads) == 2
    assert threading.get_ident() not in threads
