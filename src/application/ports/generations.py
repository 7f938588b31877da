from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from application.ports.persistence import Page, PageRequest
from domain.credits import Credits
from domain.generation import Generation


class UsageGrouping(StrEnum):
    USER = "user"
    MODEL = "model"
    KEY = "key"


@dataclass(frozen=True, slots=True)
class UsageTotal:
    key: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    credits: Credits


class GenerationRecords(Protocol):
    @abstractmethod
    async def get(self, generation_id: UUID) -> Generation | None: ...

    @abstractmethod
    async def of_user(self, user_id: UUID, page: PageRequest) -> Page[Generation]:
        """Newest first."""

    @abstractmethod
    async def usage(self, group_by: UsageGrouping, since: datetime | None, until: datetime | None) -> list[UsageTotal]:
        """Spend and tokens per group over generations created in [since, until), largest spend first."""
