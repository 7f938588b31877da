"""One generation in flight: relays the provider's deltas, checkpoints, and settles exactly once however it ends."""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import anyio
import structlog

from application.ports.billing import GenerationBilling, Settlement
from application.ports.clock import Clock, IdGenerator
from application.ports.llm import StreamEvent, TokenCounter, UsageReport
from application.ports.metrics import NO_PROBE, GenerationProbe
from domain.catalog import CatalogModel
from domain.credits import Credits
from domain.errors import DomainError, ProviderUnavailable, SettlementDeferred, UpstreamError
from domain.generation import GenerationStatus, UsageSource
from domain.pricing import Usage

SETTLE_TIMEOUT_SECONDS = 10

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class GenerationPolicy:
    """Crash safety: a running generation holds a lease it renews at each checkpoint; a reaper settles it
    (charging the checkpointed tokens) when the lease runs out. Checkpoints bound the under-charge of a crash."""

    lease: timedelta = timedelta(seconds=90)
    checkpoint_tokens: int = 32
    checkpoint_interval: timedelta = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Outcome:
    generation_id: UUID
    status: GenerationStatus
    usage: Usage
    cost: Credits
    balance: Credits | None
    output: str
    error: DomainError | None
    finished_at: datetime


class GenerationRun:
    def __init__(
        self,
        *,
        generation_id: UUID,
        created_at: datetime,
        max_tokens: int,
        api_key: str | None,
        model: CatalogModel,
        events: AsyncGenerator[StreamEvent, None],
        counter: TokenCounter,
        input_tokens: int,
        billing: GenerationBilling,
        clock: Clock,
        ids: IdGenerator,
        policy: GenerationPolicy,
        on_settled: Callable[[int], Awaitable[None]] | None = None,
        probe: GenerationProbe = NO_PROBE,
    ) -> None:
        self.generation_id = generation_id
        self._on_settled = on_settled
        self.created_at = created_at
        self.max_tokens = max_tokens
        self.api_key = api_key
        self.model = model
        self._events = events
        self._counter = counter
        self._input_tokens = input_tokens
        self._billing = billing
        self._clock = clock
        self._ids = ids
        self._policy = policy
        self._pieces: list[str] = []
        self._output_tokens = 0
        self._reported: UsageReport | None = None
        self._pending: str | None = None
        self._error: DomainError | None = None
        self._exhausted = False
        self._outcome: Outcome | None = None
        self._checkpointed_tokens = 0
        self._checkpointed_at: datetime = clock.now()
        self._checkpointing: asyncio.Task[None] | None = None
        self._probe = probe
        self._probe_closed = False

    async def open(self) -> None:
        """Wait for the first delta, so that a provider failing before any token is an HTTP error, not a stream."""
        self._pending = await self._next_text()
        if self._error is not None:
            outcome = await self.close()
            raise outcome.error or self._error

    async def deltas(self) -> AsyncIterator[str]:
        """The text as it arrives. Ends quietly on an upstream error; `close()` then reports it."""
        if self._pending is not None:
            yield self._pending
            self._pending = None
        while (text := await self._next_text()) is not None:
            yield text
            self._checkpoint_if_due()

    async def complete(self) -> Outcome:
        """Read the whole answer (the non-streaming API) and settle."""
        async for _ in self.deltas():
            pass
        return await self.close()

    async def close(self) -> Outcome:
        """Settle once: completed when the provider finished, failed on its error, cancelled when the reader left.

        Shielded, so a cancelled request (client gone, shutdown) still writes its charge."""
        if self._outcome is None:
            try:
                with anyio.CancelScope(shield=True), anyio.move_on_after(SETTLE_TIMEOUT_SECONDS):
                    await self._events.aclose()
                    if self._checkpointing is not None:
                        await asyncio.wait([self._checkpointing])  # its failure is its own (logged) business
                    self._outcome = await self._settle()
            except Exception as error:  # noqa: BLE001  # whatever the billing port raised, the reaper settles it
                log.warning("settlement_deferred", generation_id=str(self.generation_id), error=type(error).__name__)
            finally:
                if not self._probe_closed:
                    self._probe_closed = True
                    self._probe.closed()
        if self._outcome is None:
            raise SettlementDeferred
        return self._outcome

    async def _next_text(self) -> str | None:
        try:
            async for event in self._events:
                if isinstance(event, UsageReport):
                    self._reported = event
                elif event.text:
                    if not self._pieces:
                        self._probe.first_token()
                    self._pieces.append(event.text)
                    self._output_tokens += self._counter.count_text(event.text)
                    return event.text
        except (UpstreamError, ProviderUnavailable) as error:
            self._error = error
            self._probe.upstream_error(error.code)
            return None
        self._exhausted = True
        return None

    def _checkpoint_if_due(self) -> None:
        """Beside the relay, one at a time: a slow or stalled database holds up no delta."""
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        now = self._clock.now()
        due_by_tokens = self._output_tokens - self._checkpointed_tokens >= self._policy.checkpoint_tokens
        if due_by_tokens or now - self._checkpointed_at >= self._policy.checkpoint_interval:
            self._checkpointing = asyncio.create_task(
                self._billing.checkpoint(self.generation_id, self._output_tokens, self._policy.lease)
            )
            self._checkpointed_tokens, self._checkpointed_at = self._output_tokens, now

    async def _settle(self) -> Outcome:
        status = self._status()
        usage, source = self._usage()
        refunded = status is GenerationStatus.FAILED and usage.output_tokens == 0
        cost = Credits.zero() if refunded else self.model.pricing.cost(usage)
        output = "".join(self._pieces)
        finished_at = self._clock.now()
        balance = await self._billing.settle(
            Settlement(
                generation_id=self.generation_id,
                entry_id=self._ids.new_id(),
                status=status,
                usage=usage,
                usage_source=source,
                cost=cost,
                output=output,
                finished_at=finished_at,
                error_code=self._error.code if self._error else None,
            )
        )
        log.info(
            "generation_settled",
            generation_id=str(self.generation_id),
            model=self.model.id,
            api_key=self.api_key,
            status=status.value,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost=str(cost),
            already_settled=balance is None,
        )
        if balance is not None:  # None: another instance's reaper settled it first, and reports it
            billed = Usage(0, 0) if refunded else usage
            self._probe.settled(status, billed, cost)
            if self._on_settled is not None:
                await self._on_settled(billed.input_tokens + billed.output_tokens)
        return Outcome(self.generation_id, status, usage, cost, balance, output, self._error, finished_at)

    def _status(self) -> GenerationStatus:
        if self._error is not None:
            return GenerationStatus.FAILED
        return GenerationStatus.COMPLETED if self._exhausted else GenerationStatus.CANCELLED

    def relayed(self) -> tuple[Usage, Credits]:
        """What was relayed so far, priced: the most a later settlement (the reaper's) can charge for it."""
        usage, _ = self._usage()
        return usage, self.model.pricing.cost(usage)

    def _usage(self) -> tuple[Usage, UsageSource]:
        reported = self._reported
        if self._exhausted and reported is not None:
            return Usage(reported.input_tokens, reported.output_tokens), UsageSource.PROVIDER
        return Usage(self._input_tokens, self._output_tokens), UsageSource.COUNTER
