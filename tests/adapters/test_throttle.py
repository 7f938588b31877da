"""Fixed-window throttle counters on PostgreSQL: one count per subject and window, exact under concurrency, and
`hits` answers the busiest of the subjects asked about."""

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.postgres.throttle import PgThrottleCounter

WINDOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
NEXT_WINDOW = WINDOW + timedelta(minutes=15)


def _session(engine: AsyncEngine) -> AsyncSession:
    return async_sessionmaker(engine, expire_on_commit=False)()


async def _hit(engine: AsyncEngine, subjects: list[str], window_start: datetime = WINDOW) -> None:
    async with _session(engine) as session:
        await PgThrottleCounter(session).hit(subjects, window_start)
        await session.commit()


async def _hits(engine: AsyncEngine, subjects: list[str], window_start: datetime = WINDOW) -> int:
    async with _session(engine) as session:
        return await PgThrottleCounter(session).hits(subjects, window_start)


async def test_an_unseen_subject_has_no_hits(clean_db: AsyncEngine) -> None:
    assert await _hits(clean_db, ["login:user:nobody"]) == 0
    assert await _hits(clean_db, []) == 0


async def test_hits_count_per_window_and_report_the_busiest_subject(clean_db: AsyncEngine) -> None:
    await _hit(clean_db, ["user:a", "addr:1"])
    await _hit(clean_db, ["user:a", "addr:2"])
    await _hit(clean_db, ["user:a"], NEXT_WINDOW)
    assert await _hits(clean_db, ["user:a"]) == 2
    assert await _hits(clean_db, ["addr:1"]) == 1
    assert await _hits(clean_db, ["addr:1", "addr:2", "user:a"]) == 2
    assert await _hits(clean_db, ["user:a"], NEXT_WINDOW) == 1


async def test_hitting_no_subject_changes_nothing(clean_db: AsyncEngine) -> None:
    await _hit(clean_db, [])
    assert await _hits(clean_db, ["user:a"]) == 0


async def test_concurrent_hits_are_all_counted(clean_db: AsyncEngine) -> None:
    await asyncio.gather(*(_hit(clean_db, ["user:a", "addr:1"]) for _ in range(20)))
    assert await _hits(clean_db, ["user:a"]) == await _hits(clean_db, ["addr:1"]) == 20


subject_sets = st.lists(st.sampled_from(["user", "addr", "key"]), min_size=1, max_size=3, unique=True)
calls = st.lists(st.tuples(subject_sets, st.integers(0, 2)), max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=calls, asked=subject_sets)
async def test_counts_agree_with_a_counter_per_subject_and_window(
    clean_db: AsyncEngine, calls: list[tuple[list[str], int]], asked: list[str]
) -> None:
    prefix = uuid.uuid4().hex
    model: Counter[tuple[str, int]] = Counter()
    async with _session(clean_db) as session:
        counter = PgThrottleCounter(session)
        for subjects, window in calls:
            await counter.hit([f"{prefix}:{s}" for s in subjects], WINDOW + timedelta(minutes=window))
            model.update((s, window) for s in subjects)
        for window in range(3):
            expected = max(model[s, window] for s in asked)
            assert await counter.hits([f"{prefix}:{s}" for s in asked], WINDOW + timedelta(minutes=window)) == expected
