from datetime import UTC, datetime
from uuid import UUID, uuid4

from application.ports.clock import Clock, IdGenerator


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


class UuidGenerator(IdGenerator):
    def new_id(self) -> UUID:
        return uuid4()
