"""The money path of a generation: each step is one atomic statement, committed on its own (no request session)."""

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.credits import Credits
from domain.generation import GenerationKind, GenerationStatus, UsageSource
from domain.pricing import Pricing, Usage
from domain.routing import Attempt


@dataclass(frozen=True, slots=True)
class GenerationStart:
    generation_id: UUID
    entry_id: UUID
    user_id: UUID
    kind: GenerationKind
    model_id: str
    api_key: str | None
    pricing: Pricing
    input_tokens: int
    precharge: Credits
    created_at: datetime
    lease_expires_at: datetime
    """Past it, with no checkpoint renewing it, any instance's reaper settles the generation."""
    key_reserve: Credits | None = None
    """What a key-scoped generation holds against the key's credit_limit until it settles: its most expensive
    outcome (the prompt at the dearest of its prices, cache writes included, + max_tokens). None: the pre-charge."""
    reserve: Credits = field(default_factory=Credits.zero)
    """What the generation holds against the wallet until it settles: the most its completion can cost
    (max_tokens at the output price)."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """The final word on a generation; its cost replaces the pre-charge (the difference is one ledger row, which
    gives credits back when the cost is below the pre-charge: a prompt the provider served from its cache)."""

    generation_id: UUID
    entry_id: UUID
    status: GenerationStatus
    usage: Usage
    usage_source: UsageSource
    cost: Credits
    output: str | None
    finished_at: datetime
    error_code: str | None = None
    attempts: tuple[Attempt, ...] = ()
    """Its attempts on the model's deployments, in order (the last one answered, unless all failed)."""

    @property
    def is_refund(self) -> bool:
        """Nothing was produced and nothing is owed: the pre-charge goes back as a `refund` row."""
        return self.cost.is_zero()


@dataclass(frozen=True, slots=True)
class Abandoned:
    """A running generation whose lease ran out: its process died (or lost the database) mid-stream."""

    generation_id: UUID
    usage: Usage
    """Its prompt and the output tokens of its last checkpoint."""
    pricing: Pricing


class GenerationBilling(Protocol):
    @abstractmethod
    async def start(self, start: GenerationStart) -> Credits:
        """Pre-charge and record the running generation atomically; return the balance after it.

        MUST raise InsufficientBalance, changing nothing, when the balance less the reserves of the user's running
        generations is <= 0 or below the pre-charge; otherwise the wallet's reserves grow by `reserve`, and `settle`
        (reaper included) releases exactly that. So the user's running generations together can overdraw the
        balance by at most the one completion admitted last.
        For a key-scoped start, in the same atomic step: MUST raise KeyCreditLimit, changing nothing, when the
        key's spend (settled costs plus the reserves of its running generations) has reached its credit_limit;
        otherwise the key's spend grows by `key_reserve`, and `settle` replaces that reserve by the cost. So a
        key overshoots its limit by at most the one generation admitted just below it.
        """

    @abstractmethod
    async def checkpoint(self, generation_id: UUID, output_tokens: int, lease_expires_at: datetime) -> None:
        """Record the tokens produced so far and extend the lease of a running generation. Best effort: with the
        database unavailable it returns anyway, so the stream goes on; the settlement records the truth, and a
        lease that runs out meanwhile is settled by the reaper from the last checkpoint that was written."""

    @abstractmethod
    async def settle(self, settlement: Settlement) -> Credits | None:
        """Finish a running generation exactly once; return the balance after it, or None when it was already
        finished (by another instance's reaper, say), in which case nothing changes."""

    @abstractmethod
    async def reap(self, now: datetime, limit: int, verdict: Callable[[Abandoned], Settlement]) -> int:
        """Settle up to `limit` running generations whose lease expired before `now`, each as `verdict` decides,
        in one transaction that holds them; return how many. Safe to run on every instance at once: a generation
        another instance holds is skipped."""
