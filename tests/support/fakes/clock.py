"""Time and ids the tests decide."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from application.ports.clock import Clock, IdGenerator

EPOCH = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)


class FrozenClock(Clock):
    """Stands still until told to move."""

    def __init__(self, instant: datetime = EPOCH) -> None:
        self.instant = instant

    def now(self) -> datetime:
        return self.instant

    def advance(self, delta: timedelta) -> None:
        self.instant += delta


class SequentialIds(IdGenerator):
    """UUIDs 00000000-…-000000000001, …-000000000002, …: readable in failures, and ordered as created."""

    def __init__(self) -> None:
        self._last = 0

    def new_id(self) -> UUID:
        self._last += 1
        return UUID(int=self._last)
