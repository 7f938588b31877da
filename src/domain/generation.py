from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from domain.credits import Credits
from domain.errors import NotFound
from domain.pricing import Usage
from domain.routing import Attempt


class GenerationNotFound(NotFound):
    default_detail = "No such generation."


class GenerationStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class GenerationKind(StrEnum):
    """What the tokens were spent on; it is also the ledger kind of its charges."""

    GENERATION = "generation"
    COMPARISON = "comparison"


class UsageSource(StrEnum):
    PROVIDER = "provider"
    COUNTER = "counter"


@dataclass(frozen=True, slots=True)
class Generation:
    id: UUID
    user_id: UUID
    kind: GenerationKind
    model: str
    status: GenerationStatus
    usage: Usage
    cost: Credits
    created_at: datetime
    finished_at: datetime | None = None
    output: str | None = None
    api_key: str | None = None
    error_code: str | None = None
    attempts: tuple[Attempt, ...] = ()
