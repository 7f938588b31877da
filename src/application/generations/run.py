"""One generation in flight, as one stream of events: `Started`, `Delta`s and `ToolCallDelta`s, then `Finished` with its
outcome.

The stream owns the generation's life: it relays the provider's deltas, checkpoints them under a lease, and settles
exactly once in its own shielded cleanup, whatever ends it (completion, upstream error, the reader gone, cancellation,
shutdown). Entrypoints only map its events to their wire format and close it when they are done with it; the reaper
is the only other settler (of runs whose process died)."""

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import anyio
import structlog

from application.generations.routing import Route
from application.ports.billing import GenerationBilling, Settlement
from application.ports.clock import Clock, IdGenerator
from application.ports.llm import TextDelta, TokenCounter, ToolCall, ToolCallDelta, UsageReport
from application.ports.metrics import NO_PROBE, GenerationProbe
from domain.catalog import CatalogModel
from domain.credits import Credits
from domain.errors import DomainError, ProviderFailure, ProviderUnavailable, SettlementDeferred, UpstreamError
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
    """How a generation ended and what it was billed. `error` is why it did not complete: the provider's
    failure, or SettlementDeferred when its charge could not be written (then `status` is still RUNNING and
    `usage`/`cost` are what was relayed: the most the reaper will charge)."""

    generation_id: UUID
    status: GenerationStatus
    usage: Usage
    cost: Credits
    balance: Credits | None
    output: str
    error: DomainError | None
    finished_at: datetime
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class Started:
    """`input_tokens`: the prompt as counted before it was sent (the outcome's usage has the provider's count)."""

    generation_id: UUID
    model_id: str
    created_at: datetime
    max_tokens: int
    api_key: str | None
    input_tokens: int


@dataclass(frozen=True, slots=True)
class Delta:
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    outcome: Outcome


GenerationEvent = Started | Delta | ToolCallDelta | Finished


class GenerationRun:
    """Iterate it once (`async for event in run`); `aclose()` it when done, or `outcome()` (`whole_answer()`) to read
    it to the end."""

    def __init__(
        self,
        *,
        generation_id: UUID,
        created_at: datetime,
        max_tokens: int,
        api_key: str | None,
        model: CatalogModel,
        route: Route,
        counter: TokenCounter,
        input_tokens: int,
        billing: GenerationBilling,
        clock: Clock,
        ids: IdGenerator,
        policy: GenerationPolicy,
        on_settled: Callable[[int], Awaitable[None]] | None = None,
        probe: GenerationProbe = NO_PROBE,
    ) -> None:
        self.started = Started(generation_id, model.id, created_at, max_tokens, api_key, input_tokens)
        self._model = model
        self._route = route
        self._provider_events = route.first()
        self._input_tokens = input_tokens
        self._billing = billing
        self._clock = clock
        self._ids = ids
        self._policy = policy
        self._on_settled = on_settled
        self._probe = probe
        self._pieces: list[str] = []
        self._calls = _ToolCalls()
        self._tally = _OutputTally(counter, max_tokens)
        self._reported: UsageReport | None = None
        self._pending: Delta | ToolCallDelta | None = None
        self._error: DomainError | None = None
        self._exhausted = False
        self._answering = False  # a deployment produced the first token, and the route has yet to hear how it ended
        self._outcome: Outcome | None = None
        self._deltas_since_checkpoint = 0
        self._checkpointed_at: datetime = clock.now()
        self._checkpointing: asyncio.Task[None] | None = None
        self._probe_closed = False
        self._lifecycle = self._events()

    @property
    def generation_id(self) -> UUID:
        return self.started.generation_id

    async def open(self) -> None:
        """Wait for the first delta, so that a provider failing before any token is an HTTP error, not a stream;
        a failure another deployment may not share moves to the route's next one (here only: never after a token)."""
        self._pending = await self._next_piece()
        while isinstance(self._error, ProviderFailure) and (events := self._route.failed(self._error)) is not None:
            await self._close_provider_events()
            self._provider_events, self._error, self._reported = events, None, None
            self._pending = await self._next_piece()
        if self._error is not None:
            outcome = await self._close()
            raise outcome.error or self._error
        self._route.answered()
        self._answering = True

    def __aiter__(self) -> AsyncIterator[GenerationEvent]:
        return self._lifecycle

    async def aclose(self) -> Outcome:
        """End the run wherever its reader is (a reader gone mid-stream makes it `cancelled`); settles if not yet."""
        with anyio.CancelScope(shield=True), contextlib.suppress(RuntimeError):  # its reader's task is inside it
            await self._lifecycle.aclose()
        return await self._close()

    async def outcome(self) -> Outcome:
        """Read the whole answer (the non-streaming APIs): the outcome of the settled run."""
        finished: Outcome | None = None
        async for event in self:
            if isinstance(event, Finished):
                finished = event.outcome
        return finished or await self._close()

    async def whole_answer(self) -> Outcome:
        """`outcome()` of a run that completed; a run that did not is still billed for what it produced, then its
        error is raised."""
        outcome = await self.outcome()
        if outcome.error is not None:
            raise outcome.error
        return outcome

    async def _events(self) -> AsyncGenerator[GenerationEvent, None]:
        try:
            yield self.started
            if self._pending is not None:
                yield self._pending
                self._pending = None
            while (piece := await self._next_piece()) is not None:
                yield piece
                self._checkpoint_if_due()
        except BaseException:  # the reader left (GeneratorExit) or was cancelled: settle, then let it end
            await self._close()
            raise
        yield Finished(await self._close())

    async def _close(self) -> Outcome:
        """Settle once: completed when the provider finished, failed on its error, cancelled when the reader left.

        Shielded, so a cancelled request (client gone, shutdown) still writes its charge. A settlement that failed
        is tried again by the next close (the request's finalizer), and failing that is left to the reaper."""
        if self._outcome is not None:
            return self._outcome
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(SETTLE_TIMEOUT_SECONDS):
                await self._close_provider_events()
                if self._checkpointing is not None:
                    await asyncio.wait([self._checkpointing])  # its failure is its own (logged) business
                self._outcome = await self._settle()
        except Exception as error:  # noqa: BLE001  # whatever the billing port raised, the reaper settles it
            log.warning("settlement_deferred", generation_id=str(self.generation_id), error=type(error).__name__)
        finally:
            if not self._probe_closed:
                self._probe_closed = True
                self._probe.closed()
        return self._outcome or self._deferred()

    async def _close_provider_events(self) -> None:
        with contextlib.suppress(RuntimeError):  # closed from outside (a shutdown) while its reader reads
            await self._provider_events.aclose()

    def _deferred(self) -> Outcome:
        usage, _ = self._usage()
        cost = self._model.pricing.cost(usage)
        output = "".join(self._pieces)
        status, now = GenerationStatus.RUNNING, self._clock.now()
        error = SettlementDeferred()
        return Outcome(self.generation_id, status, usage, cost, None, output, error, now, self._calls.built())

    async def _next_piece(self) -> Delta | ToolCallDelta | None:
        try:
            async for event in self._provider_events:
                if isinstance(event, UsageReport):
                    self._reported = event
                elif event.text or isinstance(event, ToolCallDelta):
                    if not self._pieces and not self._calls:
                        self._probe.first_token()
                    self._tally.add(event)
                    self._deltas_since_checkpoint += 1
                    if isinstance(event, ToolCallDelta):
                        self._calls.add(event)
                        return event
                    self._pieces.append(event.text)
                    return Delta(event.text)
        except (UpstreamError, ProviderUnavailable) as error:
            self._error = error
            self._probe.upstream_error(error.code)
            return None
        self._exhausted = True
        return None

    def _checkpoint_if_due(self) -> None:
        """Beside the relay, one at a time: a slow or stalled database holds up no delta. A delta is at least one
        token, so counting deltas (not tokens) bounds the lag; tokens are counted only when a checkpoint is written."""
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        now = self._clock.now()
        due_by_tokens = self._deltas_since_checkpoint >= self._policy.checkpoint_tokens
        if due_by_tokens or now - self._checkpointed_at >= self._policy.checkpoint_interval:
            self._checkpointing = asyncio.create_task(
                self._billing.checkpoint(self.generation_id, self._tally.tokens(), now + self._policy.lease)
            )
            self._deltas_since_checkpoint, self._checkpointed_at = 0, now

    async def _settle(self) -> Outcome:
        if self._answering:
            self._answering = False
            self._route.ended(self._error)
        status = self._status()
        usage, source = self._usage()
        refunded = status is GenerationStatus.FAILED and usage.output_tokens == 0
        cost = Credits.zero() if refunded else self._model.pricing.cost(usage)
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
                attempts=self._route.attempts(),
            )
        )
        log.info(
            "generation_settled",
            generation_id=str(self.generation_id),
            model=self._model.id,
            api_key=self.started.api_key,
            status=status.value,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost=str(cost),
            already_settled=balance is None,
        )
        if balance is not None:  # None: another instance's reaper settled it first, and reports it
            billed = Usage(0, 0) if refunded else usage
            self._probe.settled(status, billed, cost)
            if self._on_settled is not None:
                await self._on_settled(billed.input_tokens + billed.output_tokens)
        calls = self._calls.built()
        return Outcome(self.generation_id, status, usage, cost, balance, output, self._error, finished_at, calls)

    def _status(self) -> GenerationStatus:
        if self._error is not None:
            return GenerationStatus.FAILED
        return GenerationStatus.COMPLETED if self._exhausted else GenerationStatus.CANCELLED

    def _usage(self) -> tuple[Usage, UsageSource]:
        reported = self._reported
        if self._exhausted and reported is not None:
            output_tokens = min(reported.output_tokens, self.started.max_tokens)
            usage = Usage(
                input_tokens=reported.input_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=reported.cached_input_tokens,
                cache_write_tokens=reported.cache_write_tokens,
                reasoning_tokens=min(reported.reasoning_tokens, output_tokens),
            )
            return usage, UsageSource.PROVIDER
        return Usage(self._input_tokens, self._tally.tokens()), UsageSource.COUNTER


class _OutputTally:
    """The output tokens relayed so far: exact where the provider counted a delta itself, otherwise counted on
    the text (lazily, once per checkpoint or settlement, on the joined pieces as the model tokenized them), and
    never more than `max_tokens`, however the estimate errs."""

    def __init__(self, counter: TokenCounter, max_tokens: int) -> None:
        self._counter = counter
        self._max_tokens = max_tokens
        self._counted = 0
        self._uncounted: list[str] = []

    def add(self, delta: TextDelta | ToolCallDelta) -> None:
        if delta.tokens is None:
            self._uncounted.append(delta.text)
        else:
            self._counted += delta.tokens

    def tokens(self) -> int:
        if self._uncounted:
            self._counted += self._counter.count_text("".join(self._uncounted))
            self._uncounted.clear()
        return min(self._counted, self._max_tokens)


class _ToolCalls:
    """The tool calls of the answer, assembled from their deltas (by index, in the order they began)."""

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}
        self._names: dict[int, str] = {}
        self._arguments: dict[int, list[str]] = {}

    def __bool__(self) -> bool:
        return bool(self._arguments)

    def add(self, delta: ToolCallDelta) -> None:
        if delta.id:
            self._ids[delta.index] = delta.id
        if delta.name:
            self._names[delta.index] = self._names.get(delta.index, "") + delta.name
        self._arguments.setdefault(delta.index, []).append(delta.arguments)

    def built(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(self._ids.get(index, ""), self._names.get(index, ""), "".join(arguments))
            for index, arguments in self._arguments.items()
        )
