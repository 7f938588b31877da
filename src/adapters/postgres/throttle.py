from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import case, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import throttle_counters
from application.ports.persistence import ThrottleCounter


class PgThrottleCounter(ThrottleCounter):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def take(self, limits: Mapping[str, int], window_start: datetime) -> bool:
        """One upsert counts every subject below its limit; the row lock makes concurrent callers re-check the
        count a winner left. Subjects are locked in one order, so two callers never wait on each other in a cycle."""
        subjects = sorted(limits)
        statement = (
            insert(throttle_counters)
            .values([{"subject": subject, "window_start": window_start, "hits": 1} for subject in subjects])
            .on_conflict_do_update(
                index_elements=[throttle_counters.c.subject, throttle_counters.c.window_start],
                set_={"hits": throttle_counters.c.hits + 1},
                where=throttle_counters.c.hits < case(limits, value=throttle_counters.c.subject),
            )
            .returning(throttle_counters.c.subject)
        )
        savepoint = await self._session.begin_nested()
        taken = (await self._session.execute(statement)).scalars().all()
        if len(taken) < len(subjects):
            await savepoint.rollback()
            return False
        await savepoint.commit()
        return True

    async def release(self, subjects: Sequence[str], window_start: datetime) -> None:
        await self._session.execute(
            update(throttle_counters)
            .where(
                throttle_counters.c.subject.in_(subjects),
                throttle_counters.c.window_start == window_start,
                throttle_counters.c.hits > 0,
            )
            .values(hits=throttle_counters.c.hits - 1)
        )
