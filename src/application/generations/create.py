from application.generations.run import GenerationRun, Outcome, Started
from application.generations.start import Order, StartGeneration
from application.generations.views import GenerationRequest, GenerationView, OutputView, UsageView
from application.ports.llm import ChatMessage, CompletionOptions
from application.ports.security import IdentityProvider


class CreateGeneration:
    """Generate a chat answer, billed in credits. The prompt is pre-charged before anything starts (402 when
    the balance is not positive or does not cover it); the completion is charged for the tokens actually
    produced — also when the stream fails or the client disconnects (then the generation is `cancelled`).
    A provider failing before its first token refunds the pre-charge. With `stream: true` the answer is a
    Server-Sent Events stream: `start`, `delta`…, then exactly one of `done` or `error`."""

    def __init__(self, identity: IdentityProvider, start: StartGeneration) -> None:
        self._identity = identity
        self._start = start

    async def __call__(self, request: GenerationRequest) -> GenerationRun:
        return await self._start(await self._order(request))

    async def _order(self, request: GenerationRequest) -> Order:
        return Order(
            principal=await self._identity.current(),
            model_id=request.model,
            messages=[ChatMessage(role=m.role, content=m.content) for m in request.messages],
            max_tokens=request.max_tokens,
            options=CompletionOptions(temperature=request.temperature),
        )


def completed_view(run: Started, outcome: Outcome) -> GenerationView:
    return GenerationView(
        id=outcome.generation_id,
        model=run.model_id,
        status=outcome.status,
        usage=UsageView.of(outcome.usage),
        cost=str(outcome.cost),
        created_at=run.created_at,
        finished_at=outcome.finished_at,
        output=OutputView(content=outcome.output),
        balance=None if outcome.balance is None else str(outcome.balance),
        api_key=run.api_key,
    )
