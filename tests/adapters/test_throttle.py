"""Fixed-window throttle counters on PostgreSQL: `take` counts an attempt against every subject only while each
is below its limit, exactly under concurrency, and `release` gives one back."""

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.postgres.throttle import PgThrottleCounter

WINDOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
NEXT_WINDOW = WINDOW + timedelta(minutes=15)


def _session(engine: AsyncEngine) -> AsyncSession:
    return async_sessionmaker(engine, expire_on_commit=False)()


async def _take(engine: AsyncEngine, limits: dict[str, int], window_start: datetime = WINDOW) -> bool:
    async with _session(engine) as session:
        taken = await PgThrottleCounter(session).take(limits, window_start)
        await session.commit()
    return taken


async def _release(engine: AsyncEngine, subjects: list[str], window_start: datetime = WINDOW) -> None:
    async with _session(engine) as session:
        await PgThrottleCounter(session).release(subjects, window_start)
        await session.commit()


async def _hits(engine: AsyncEngine, subject: str, window_start: datetime = WINDOW) -> int:
    async with engine.connect() as connection:
        hits = await connection.scalar(
            text("SELECT hits FROM throttle_counters WHERE subject = :s AND window_start = :w"),
            {"s": subject, "w": window_start},
        )
    return int(hits or 0)


async def test_takes_stop_at_the_limit_per_subject_and_window(clean_db: AsyncEngine) -> None:
    assert [await _take(clean_db, {"user:a": 2}) for _ in range(3)] == [True, True, False]
    assert await _hits(clean_db, "user:a") == 2
    assert await _take(clean_db, {"user:a": 2}, NEXT_WINDOW)
    assert await _take(clean_db, {"user:b": 2})


async def test_a_full_subject_counts_nothing_against_the_others(clean_db: AsyncEngine) -> None:
    assert await _take(clean_db, {"user:a": 1, "addr:1": 5})
    assert not await _take(clean_db, {"user:a": 1, "addr:1": 5})
    assert await _hits(clean_db, "addr:1") == 1


async def test_a_release_gives_one_attempt_back(clean_db: AsyncEngine) -> None:
    assert await _take(clean_db, {"user:a": 1})
    await _release(clean_db, ["user:a"])
    assert await _hits(clean_db, "user:a") == 0
    await _release(clean_db, ["user:a"])
    assert await _hits(clean_db, "user:a") == 0
    assert await _take(clean_db, {"user:a": 1})


async def test_concurrent_takes_never_pass_the_limit(clean_db: AsyncEngine) -> None:
    taken = await asyncio.gather(*(_take(clean_db, {"user:a": 7, "addr:1": 30}) for _ in range(40)))
    assert taken.count(True) == 7
    assert await _hits(clean_db, "user:a") == 7
    assert await _hits(clean_db, "addr:1") == 7


subject_sets = st.lists(st.sampled_from(["user", "addr", "key"]), min_size=1, max_size=3, unique=True)
calls = st.lists(st.tuples(subject_sets, st.integers(0, 2)), max_size=12)
LIMITS = {"user": 2, "addr": 3, "key": 1}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=calls)
async def test_takes_agree_with_a_counter_per_subject_and_window(
    clean_db: AsyncEngine, calls: list[tuple[list[str], int]]
) -> None:
    prefix = uuid.uuid4().hex
    model: Counter[tuple[str, int]] = Counter()
    async with _session(clean_db) as session:
        counter = PgThrottleCounter(session)
        for subjects, window in calls:
            expected = all(model[s, window] < LIMITS[s] for s in subjects)
            limits = {f"{prefix}:{s}": LIMITS[s] for s in subjects}
            assert await counter.take(limits, WINDOW + timedelta(minutes=window)) == expected
            if expected:
                model.update((s, window) for s in subjects)
