"""Requests and tokens per minute, per user and per API key (SPEC §9, RELIABILITY Z5): 429 with Retry-After."""

import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from dishka import Provider, Scope
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports.clock import Clock
from entrypoints.http.app import create_app
from entrypoints.settings import RateLimitSettings, Settings, load_settings
from tests.api.test_comparison import world_on
from tests.support.api import admin_token, bearer, client_token, fund, user_id_of
from tests.support.fakes.clock import FrozenClock
from tests.support.settings import replace_settings

REDIS_URL = "redis://127.0.0.1:6379/0"
HELLO = [{"role": "user", "content": "Hello there"}]
GENERATIONS = "/api/v1/generations"


def clocked(clock: FrozenClock) -> Provider:
    provider = Provider(scope=Scope.APP)
    provider.provide(lambda: clock, provides=Clock, override=True)
    return provider


@pytest.fixture
def clock() -> FrozenClock:
    """Ten seconds into a fixed one-minute window, so every figure below is exact."""
    return FrozenClock(datetime.fromtimestamp(int(time.time()) // 60 * 60 + 10, tz=UTC))


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A prefix of this test alone; its keys are deleted afterwards. Skips when no Redis listens locally."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError):
        await client.aclose()
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"creditgate-test-{uuid.uuid4().hex}:"
    yield prefix
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def assert_too_many(response: Any, retry_after: int | None = None) -> None:
    assert response.status_code == 429, response.text
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= 60
    if retry_after is not None:
        assert seconds == retry_after
    body = response.json()
    code = body["code"] if "code" in body else body["error"]["code"]
    assert code == "too_many_requests"


async def test_requests_per_user_are_limited_with_retry_after(
    settings: Settings, clean_db: AsyncEngine, clock: FrozenClock
) -> None:
    app = create_app(replace_settings(settings, rate_limits={"user_rpm": 3}), clocked(clock))
    async with AsyncTestClient(app=app) as client:
        alice = await client_token(client, "alice")
        bob = await client_token(client, "bob")
        for _ in range(3):
            assert (await client.get("/api/v1/me", headers=bearer(alice))).status_code == 200
        assert_too_many(await client.get("/api/v1/me", headers=bearer(alice)), retry_after=50)
        assert_too_many(await client.get("/v1/models", headers=bearer(alice)), retry_after=50)  # OpenAI shape
        assert (await client.get("/api/v1/me", headers=bearer(bob))).status_code == 200
        clock.instant += timedelta(seconds=50)
        assert (await client.get("/api/v1/me", headers=bearer(alice))).status_code == 200


async def test_the_memory_store_is_the_default_and_zero_turns_a_limit_off(
    settings: Settings, clean_db: AsyncEngine, clock: FrozenClock, tmp_path: Path
) -> None:
    defaults = RateLimitSettings()
    assert defaults.redis_url is None
    assert (defaults.user_rpm, defaults.key_rpm) == (600, 600)
    assert (defaults.user_tpm, defaults.key_tpm) == (0, 0)
    parsed = load_settings(
        {"RATE_LIMIT_USER_TPM": "5000", "RATE_LIMIT_KEY_TPM": "0", "DATA_DIR": str(tmp_path)}, tmp_path / ".env"
    )
    assert (parsed.rate_limits.user_tpm, parsed.rate_limits.key_tpm) == (5000, 0)
    app = create_app(replace_settings(settings, rate_limits={"user_rpm": 0, "key_rpm": 0}), clocked(clock))
    async with AsyncTestClient(app=app) as client:
        token = await client_token(client, "unlimited")
        statuses = [(await client.get("/api/v1/me", headers=bearer(token))).status_code for _ in range(40)]
    assert statuses == [200] * 40


async def test_a_key_has_its_own_requests_per_minute(
    settings: Settings, clean_db: AsyncEngine, clock: FrozenClock
) -> None:
    app = create_app(replace_settings(settings, rate_limits={"key_rpm": 2}), clocked(clock))
    async with AsyncTestClient(app=app) as client:
        world = await world_on(client, settings)
        _, first = await world.key_token()
        _, second = await world.key_token()
        for _ in range(2):
            assert (await client.get("/api/v1/models", headers=bearer(first))).status_code == 200
        assert_too_many(await client.get("/api/v1/models", headers=bearer(first)), retry_after=50)
        assert (await client.get("/api/v1/models", headers=bearer(second))).status_code == 200
        assert (await client.get("/api/v1/models", headers=bearer(world.user))).status_code == 200


async def test_key_requests_also_count_against_the_owner(
    settings: Settings, clean_db: AsyncEngine, clock: FrozenClock
) -> None:
    app = create_app(replace_settings(settings, rate_limits={"user_rpm": 4}), clocked(clock))
    async with AsyncTestClient(app=app) as client:
        world = await world_on(client, settings)  # spends one of carla's requests (GET /me)
        _, key_token = await world.key_token()
        statuses = [(await client.get("/api/v1/models", headers=bearer(key_token))).status_code for _ in range(4)]
        assert statuses.count(200) == 3
        assert_too_many(await client.get("/api/v1/me", headers=bearer(world.user)))


async def test_tokens_per_minute_refuse_new_generations_once_used_up(
    settings: Settings, clean_db: AsyncEngine, clock: FrozenClock
) -> None:
    app = create_app(replace_settings(settings, rate_limits={"user_tpm": 20, "key_tpm": 30}), clocked(clock))
    async with AsyncTestClient(app=app) as client:
        world = await world_on(client, settings)
        body = {"model": "gemini-flash", "messages": HELLO, "max_tokens": 12}
        first = await client.post(GENERATIONS, json=body, headers=bearer(world.user))
        assert first.status_code == 200, first.text
        usage = first.json()["usage"]
        assert usage["input_tokens"] + usage["output_tokens"] >= 20
        assert_too_many(await client.post(GENERATIONS, json=body, headers=bearer(world.user)), retry_after=50)
        chat = {"model": "gemini-flash", "messages": HELLO, "max_tokens": 3}
        assert_too_many(await client.post("/v1/chat/completions", json=chat, headers=bearer(world.user)))
        assert (await client.get("/api/v1/me", headers=bearer(world.user))).status_code == 200
        clock.instant += timedelta(seconds=50)
        assert (await client.post(GENERATIONS, json=body, headers=bearer(world.user))).status_code == 200


async def test_key_tokens_count_against_the_key_and_its_owner(
    settings: Settings, clean_db: AsyncEngine, clock: FrozenClock
) -> None:
    """One generation here bills 22 tokens (10 prompt + 12 completion); the owner's budget is 30."""
    app = create_app(replace_settings(settings, rate_limits={"key_tpm": 10, "user_tpm": 30}), clocked(clock))
    async with AsyncTestClient(app=app) as client:
        world = await world_on(client, settings)
        _, key_token = await world.key_token()
        body = {"model": "gemini-flash", "messages": HELLO, "max_tokens": 12}
        first = await client.post(GENERATIONS, json=body, headers=bearer(key_token))
        assert first.status_code == 200
        assert sum(first.json()["usage"].values()) == 22
        assert_too_many(await client.post(GENERATIONS, json=body, headers=bearer(key_token)))  # the key: 22/10
        assert (await client.post(GENERATIONS, json=body, headers=bearer(world.user))).status_code == 200  # 22/30
        assert_too_many(await client.post(GENERATIONS, json=body, headers=bearer(world.user)))  # the owner: 44/30


async def test_limits_are_shared_by_two_instances_through_redis(
    settings: Settings, clean_db: AsyncEngine, clock: FrozenClock, redis_prefix: str
) -> None:
    shared = replace_settings(
        settings, rate_limits={"redis_url": REDIS_URL, "redis_prefix": redis_prefix, "user_rpm": 4, "key_rpm": 2}
    )
    apps = [create_app(shared, clocked(clock)), create_app(shared, clocked(clock))]
    async with AsyncTestClient(app=apps[0]) as one, AsyncTestClient(app=apps[1]) as two:
        token = await client_token(one, "shared")
        statuses = [
            (await instance.get("/api/v1/me", headers=bearer(token))).status_code for instance in (one, two, one, two)
        ]
        assert statuses == [200] * 4
        assert_too_many(await two.get("/api/v1/me", headers=bearer(token)), retry_after=50)
        assert_too_many(await one.get("/api/v1/me", headers=bearer(token)), retry_after=50)
        world = await world_on(one, replace_settings(shared))
        _, key_token = await world.key_token()
        assert (await one.get("/api/v1/models", headers=bearer(key_token))).status_code == 200
        assert (await two.get("/api/v1/models", headers=bearer(key_token))).status_code == 200
        assert_too_many(await one.get("/api/v1/models", headers=bearer(key_token)), retry_after=50)
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
    ttls = [await client.ttl(key) for key in keys]
    await client.aclose()
    assert keys
    assert all(0 < ttl <= 61 for ttl in ttls), ttls


async def test_tokens_per_minute_through_redis(
    settings: Settings, clean_db: AsyncEngine, clock: FrozenClock, redis_prefix: str
) -> None:
    shared = replace_settings(
        settings, rate_limits={"redis_url": REDIS_URL, "redis_prefix": redis_prefix, "user_tpm": 20}
    )
    body = {"model": "gemini-flash", "messages": HELLO, "max_tokens": 20}
    async with AsyncTestClient(app=create_app(shared, clocked(clock))) as one:
        admin = await admin_token(one, settings, username="tpm-admin")
        token = await client_token(one, "tpm")
        await fund(one, admin, await user_id_of(one, token), "10")
        assert (await one.post(GENERATIONS, json=body, headers=bearer(token))).status_code == 200
    async with AsyncTestClient(app=create_app(shared, clocked(clock))) as two:
        assert_too_many(await two.post(GENERATIONS, json=body, headers=bearer(token)), retry_after=50)


async def test_redis_down_fails_open_to_per_instance_limits(settings: Settings, clean_db: AsyncEngine) -> None:
    """R3: nothing listens on port 1. Every answer is 200 or 429 (never 500), each within one second, and the
    limit still holds on this instance."""
    down = replace_settings(settings, rate_limits={"redis_url": "redis://127.0.0.1:1/0", "user_rpm": 5})
    async with AsyncTestClient(app=create_app(down)) as client:
        token = await client_token(client, "redisdown")
        statuses, slowest = [], 0.0
        for _ in range(12):
            started = time.perf_counter()
            statuses.append((await client.get("/api/v1/me", headers=bearer(token))).status_code)
            slowest = max(slowest, time.perf_counter() - started)
    assert set(statuses) <= {200, 429}
    assert 1 <= statuses.count(200) <= 5 * 2  # a window boundary may fall inside the loop
    assert 429 in statuses
    assert slowest < 1.0


async def test_a_redis_that_never_answers_costs_at_most_the_socket_timeout(
    settings: Settings, clean_db: AsyncEngine
) -> None:
    """R3: a peer that accepts connections and never replies (a hung Redis) must not hang requests."""
    black_hole = socket.socket()  # listens, never accepts: the kernel completes the handshake, nobody answers
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(16)
    port = black_hole.getsockname()[1]
    hung = replace_settings(
        settings,
        rate_limits={"redis_url": f"redis://127.0.0.1:{port}/0", "user_rpm": 100, "redis_timeout_ms": 150},
    )
    try:
        async with AsyncTestClient(app=create_app(hung)) as client:
            token = await client_token(client, "hung")
            timings = []
            for _ in range(5):
                started = time.perf_counter()
                response = await client.get("/api/v1/me", headers=bearer(token))
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
    finally:
        black_hole.close()
    assert timings[0] >= 0.1, "the first request waited on the hung Redis"
    assert max(timings) < 1.0, timings
