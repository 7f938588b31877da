from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from application.generations.open_runs import OpenRuns
from application.generations.run import GenerationPolicy, GenerationRun
from application.limits.quota import Quotas
from application.ports.billing import GenerationBilling, GenerationStart
from application.ports.catalog import ModelLookup
from application.ports.clock import Clock, IdGenerator
from application.ports.llm import ChatMessage, CompletionRequest, ProviderRegistry
from application.ports.metrics import GenerationMetrics
from domain.errors import InvalidInput, ModelNotFound
from domain.generation import GenerationKind
from domain.user import Principal


@dataclass(frozen=True, slots=True)
class Order:
    """What to generate, for whom; shared by the chat APIs and text comparison."""

    principal: Principal
    model_id: str
    messages: Sequence[ChatMessage]
    max_tokens: int | None = None
    temperature: float | None = None
    json_output: bool = False
    kind: GenerationKind = GenerationKind.GENERATION


class StartGeneration:
    """Look up the model, pre-charge the prompt and reserve the most the completion can cost, atomically (402
    `insufficient_balance` when the balance less the reserves of the user's running generations is not positive
    or does not cover the prompt; 402 `key_credit_limit` when a key-scoped principal's key has spent its
    limit — checked in the same statement; nothing starts), then open the provider stream and wait for its first token,
    so that a provider failing before any token refunds the pre-charge and answers 502/503."""

    def __init__(
        self,
        catalog: ModelLookup,
        providers: ProviderRegistry,
        billing: GenerationBilling,
        open_runs: OpenRuns,
        clock: Clock,
        ids: IdGenerator,
        policy: GenerationPolicy,
        quotas: Quotas,
        metrics: GenerationMetrics,
    ) -> None:
        self._quotas = quotas
        self._catalog = catalog
        self._providers = providers
        self._billing = billing
        self._open_runs = open_runs
        self._clock = clock
        self._ids = ids
        self._policy = policy
        self._metrics = metrics

    async def __call__(self, order: Order) -> GenerationRun:
        model = await self._catalog.get(order.model_id)
        if model is None or not model.enabled:
            raise ModelNotFound
        if order.max_tokens is not None and order.max_tokens > model.max_output_tokens:
            raise InvalidInput(f"at most {model.max_output_tokens} for this model", field="max_tokens")
        await self._quotas.admit_generation(order.principal)
        provider = self._providers.get(model.provider)
        counter = provider.counter_for(model.upstream_model)
        input_tokens = counter.count_messages(order.messages)
        generation_id = self._ids.new_id()
        created_at = self._clock.now()
        max_tokens = order.max_tokens or min(
            model.max_output_tokens, provider.default_max_tokens or model.max_output_tokens
        )
        await self._billing.start(
            GenerationStart(
                generation_id=generation_id,
                entry_id=self._ids.new_id(),
                user_id=order.principal.user_id,
                kind=order.kind,
                model_id=model.id,
                api_key=order.principal.api_key,
                pricing=model.pricing,
                input_tokens=input_tokens,
                precharge=model.pricing.input_cost(input_tokens),
                created_at=created_at,
                lease_expires_at=created_at + self._policy.lease,
                key_reserve=model.pricing.most_cost(input_tokens, max_tokens),
                reserve=model.pricing.output_cost(max_tokens),
            )
        )
        events = provider.stream(
            CompletionRequest(
                upstream_model=model.upstream_model,
                messages=order.messages,
                max_tokens=max_tokens,
                temperature=order.temperature,
                json_output=order.json_output,
            )
        )
        run = self._open_runs.add(
            GenerationRun(
                generation_id=generation_id,
                created_at=created_at,
                max_tokens=max_tokens,
                api_key=order.principal.api_key,
                model=model,
                events=events,
                counter=counter,
                input_tokens=input_tokens,
                billing=self._billing,
                clock=self._clock,
                ids=self._ids,
                policy=self._policy,
                on_settled=partial(self._quotas.record_tokens, order.principal),
                probe=self._metrics.started(model.provider, model.id),
            )
        )
        await run.open()
        return run
