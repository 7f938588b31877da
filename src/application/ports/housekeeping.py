from abc import abstractmethod
from datetime import datetime
from typing import Protocol


class Housekeeping(Protocol):
    @abstractmethod
    async def purge(self, *, nonces_before: datetime, windows_before: datetime, idempotency_before: datetime) -> int:
        """Delete login nonces past their expiry, throttle windows and idempotency keys older than the given
        instants; return how many rows went."""
