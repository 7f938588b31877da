"""A generation run on the fakes of its ports, started as StartGeneration starts one: pre-charged on a funded
wallet, so that its settlement moves real (fake) money and is recorded exactly once."""

from collections.abc import AsyncGenerator, AsyncIterator
from datetime import timedelta

from adapters.llm.token_counter import ApproximateTokenCounter
from application.generations.routing import Route
from application.generations.run import Delta, GenerationPolicy, GenerationRun
from application.ports.billing import GenerationStart
from application.ports.llm import CompletionRequest, LLMProvider, StreamEvent, TokenCounter
from application.ports.metrics import NO_PROBE, GenerationProbe
from domain.catalog import CatalogModel
from domain.credits import Credits
from domain.generation import GenerationKind
from domain.pricing import Pricing
from tests.support.fakes import Fakes

MODEL = CatalogModel("m", "fake", "fake-m", "", Pricing(1, Credits(1000), Credits(2000)), 100, True)
INPUT_TOKENS = 7
LEASE = GenerationPolicy().lease


async def started(fakes: Fakes, *, max_tokens: int = 10, lease: timedelta = LEASE) -> GenerationStart:
    """A running generation of MODEL for a new funded user (the pre-charge and reserve taken)."""
    user = await fakes.funded_client(f"runner-{len(fakes.db.tables.users)}", "1000")
    now = fakes.clock.now()
    start = GenerationStart(
        generation_id=fakes.ids.new_id(),
        entry_id=fakes.ids.new_id(),
        user_id=user.id,
        kind=GenerationKind.GENERATION,
        model_id=MODEL.id,
        api_key=None,
        pricing=MODEL.pricing,
        input_tokens=INPUT_TOKENS,
        precharge=MODEL.pricing.input_cost(INPUT_TOKENS),
        created_at=now,
        lease_expires_at=now + lease,
        reserve=MODEL.pricing.output_cost(max_tokens),
    )
    await fakes.billing.start(start)
    return start


async def generation_run(
    events: AsyncGenerator[StreamEvent],
    fakes: Fakes,
    *,
    probe: GenerationProbe = NO_PROBE,
    max_tokens: int = 10,
    counter: TokenCounter | None = None,
    policy: GenerationPolicy | None = None,
    model: CatalogModel = MODEL,
) -> GenerationRun:
    policy = policy or GenerationPolicy()
    start = await started(fakes, max_tokens=max_tokens, lease=policy.lease)
    return GenerationRun(
        generation_id=start.generation_id,
        created_at=start.created_at,
        max_tokens=max_tokens,
        api_key=None,
        model=model,
        route=Route(
            [(model.deployments[0], _Given(events))],
            CompletionRequest(model.upstream_model, [], max_tokens),
            fakes.health,
            fakes.clock,
            fakes.routing_metrics,
        ),
        counter=counter or ApproximateTokenCounter(),
        input_tokens=INPUT_TOKENS,
        billing=fakes.billing,
        clock=fakes.clock,
        ids=fakes.ids,
        policy=policy,
        probe=probe,
    )


class _Given(LLMProvider):
    """The one stream a test made."""

    def __init__(self, events: AsyncGenerator[StreamEvent]) -> None:
        self._events = events

    def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent]:
        return self._events

    @property
    def token_counter(self) -> TokenCounter:
        return ApproximateTokenCounter()


async def deltas_of(run: GenerationRun) -> AsyncIterator[str]:
    async for event in run:
        if isinstance(event, Delta):
            yield event.text
