from abc import abstractmethod
from typing import Protocol


class DatabaseProbe(Protocol):
    @abstractmethod
    async def ping(self, timeout_seconds: float) -> bool:
        """True when the database answered a trivial query within the timeout; never raises."""
