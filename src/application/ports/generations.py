from abc import abstractmethod
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from application.ports.persistence import Page, PageRequest
from domain.credits import Credits
from domain.generation import Generation, GenerationStatus
from domain.pricing import Usage


class UsageGrouping(StrEnum):
    USER = "user"
    MODEL = "model"
    KEY = "key"


@dataclass(frozen=True, slots=True)
class UsageTotal:
    key: str | None
    requests: int
    usage: Usage
    credits: Credits


@dataclass(frozen=True, slots=True)
class KeyActivity:
    api_key: str
    requests: int
    credits: Credits
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class GenerationFilter:
    """Generations matching every given criterion; `since`/`until` bound `created_at` as `[since, until)`."""

    user_id: UUID | None = None
    model: str | None = None
    status: GenerationStatus | None = None
    api_key: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class DailyActivity:
    """Generations of one model created on one UTC day, by outcome, and the credits they cost."""

    day: date
    model: str
    generations: int
    failed: int
    running: int
    credits: Credits


class GenerationRecords(Protocol):
    @abstractmethod
    async def get(self, generation_id: UUID) -> Generation | None: ...

    @abstractmethod
    async def of_user(self, user_id: UUID, page: PageRequest) -> Page[Generation]:
        """Newest first."""

    @abstractmethod
    async def search(self, where: GenerationFilter, page: PageRequest) -> Page[Generation]:
        """Every user's generations that match `where`, newest first."""

    @abstractmethod
    async def usage(self, group_by: UsageGrouping, since: datetime | None, until: datetime | None) -> list[UsageTotal]:
        """Spend and tokens per group over generations created in [since, until), largest spend first."""

    @abstractmethod
    async def key_usage(self, api_key: str, since: datetime | None, until: datetime | None) -> list[UsageTotal]:
        """One key's spend and tokens per model over [since, until)."""

    @abstractmethod
    async def last_use(self, api_key: str) -> datetime | None: ...

    @abstractmethod
    async def daily_activity(self, since: datetime, until: datetime) -> list[DailyActivity]:
        """Per UTC day and model, over generations created in [since, until): a reporting aggregate."""

    @abstractmethod
    async def key_activity(self, since: datetime) -> list[KeyActivity]:
        """Every key: requests and credits since `since`, and when it was last used at all."""
