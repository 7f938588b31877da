from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import throttle_counters
from application.ports.persistence import ThrottleCounter


class PgThrottleCounter(ThrottleCounter):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def hits(self, subjects: Sequence[str], window_start: datetime) -> int:
        count = await self._session.scalar(
            select(func.coalesce(func.max(throttle_counters.c.hits), 0)).where(
                throttle_counters.c.subject.in_(subjects), throttle_counters.c.window_start == window_start
            )
        )
        return int(count or 0)

    async def hit(self, subjects: Sequence[str], window_start: datetime) -> None:
        if not subjects:
            return
        statement = insert(throttle_counters).values(
            [{"subject": subject, "window_start": window_start, "hits": 1} for subject in subjects]
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[throttle_counters.c.subject, throttle_counters.c.window_start],
                set_={"hits": throttle_counters.c.hits + 1},
            )
        )
