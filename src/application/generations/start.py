from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import msgspec

from application.generations.open_runs import OpenRuns
from application.generations.routing import DeploymentHealth, Route
from application.generations.run import GenerationPolicy, GenerationRun
from application.limits.quota import Quotas
from application.ports.billing import GenerationBilling, GenerationStart
from application.ports.catalog import ModelLookup
from application.ports.clock import Clock, IdGenerator
from application.ports.llm import (
    ChatMessage,
    CompletionOptions,
    CompletionRequest,
    LLMProvider,
    ProviderRegistry,
    prompt_tokens,
)
from application.ports.metrics import GenerationMetrics, RoutingMetrics
from domain.catalog import CatalogModel, ModelNotFound
from domain.errors import DomainError, InvalidInput, ProviderUnavailable, UnsupportedParameter
from domain.generation import GenerationKind
from domain.routing import Deployment
from domain.user import Principal


@dataclass(frozen=True, slots=True)
class Order:
    """What to generate, for whom; shared by the chat APIs and text comparison."""

    principal: Principal
    model_id: str
    messages: Sequence[ChatMessage]
    max_tokens: int | None = None
    options: CompletionOptions = field(default_factory=CompletionOptions)
    kind: GenerationKind = GenerationKind.GENERATION


class StartGeneration:
    """Look up the model, pre-charge the prompt and reserve the most the completion can cost, atomically (402
    `insufficient_balance` when the balance less the reserves of the user's running generations is not positive
    or does not cover the prompt; 402 `key_credit_limit` when a key-scoped principal's key has spent its
    limit — checked in the same statement; nothing starts), then open the provider stream and wait for its first token,
    so that a provider failing before any token refunds the pre-charge and answers 502/503. A model with several
    deployments tries them in the order of their priority (by weight within one), failing over before the first
    token; the generation is pre-charged and settled once, whichever deployment answers."""

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
        health: DeploymentHealth,
        routing_metrics: RoutingMetrics,
    ) -> None:
        self._health = health
        self._routing_metrics = routing_metrics
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
        _check_tool_messages(order.messages)
        candidates = self._candidates(model, order)
        deployment, provider = candidates[0]
        max_tokens = order.max_tokens or min(
            model.max_output_tokens, provider.default_max_tokens or model.max_output_tokens
        )
        request = CompletionRequest(deployment.upstream_model, order.messages, max_tokens, order.options)
        await self._quotas.admit_generation(order.principal)
        counter = provider.counter_for(deployment.upstream_model)
        input_tokens = prompt_tokens(counter, request)
        generation_id = self._ids.new_id()
        created_at = self._clock.now()
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
        route = Route(candidates, request, self._health, self._clock, self._routing_metrics)
        run = self._open_runs.add(
            GenerationRun(
                generation_id=generation_id,
                created_at=created_at,
                max_tokens=max_tokens,
                api_key=order.principal.api_key,
                model=model,
                route=route,
                counter=counter,
                input_tokens=input_tokens,
                billing=self._billing,
                clock=self._clock,
                ids=self._ids,
                policy=self._policy,
                on_settled=partial(self._quotas.record_tokens, order.principal),
                probe=self._metrics.started(deployment.provider, model.id),
            )
        )
        await run.open()
        return run

    def _candidates(self, model: CatalogModel, order: Order) -> list[tuple[Deployment, LLMProvider]]:
        """The deployments to try, in order: configured, able to honour the request (a parameter is refused only
        when no deployment honours it), those their breakers admit first."""
        usable: list[tuple[Deployment, LLMProvider]] = []
        refusal: DomainError | None = None
        for deployment in model.deployments:
            try:
                provider = self._providers.get(deployment.provider)
            except ProviderUnavailable as error:
                refusal = refusal or error
                continue
            request = CompletionRequest(deployment.upstream_model, order.messages, 1, order.options)
            if (parameter := provider.unsupported(request)) is not None:
                if not isinstance(refusal, UnsupportedParameter):
                    refusal = UnsupportedParameter(parameter, model.id)
                continue
            usable.append((deployment, provider))
        if not usable:
            raise refusal or ProviderUnavailable()
        providers = dict(usable)
        return [(d, providers[d]) for d in self._health.order(list(providers))]


def _check_tool_messages(messages: Sequence[ChatMessage]) -> None:
    """Every provider's rule: a tool call's arguments are a JSON object, and a tool message answers a call made
    earlier in the chat."""
    called: set[str] = set()
    for i, message in enumerate(messages):
        for j, call in enumerate(message.tool_calls):
            try:
                arguments = msgspec.json.decode(call.arguments)
            except msgspec.DecodeError:
                arguments = None
            if not isinstance(arguments, dict):
                raise InvalidInput(
                    "the arguments must be a JSON object", field=f"messages[{i}].tool_calls[{j}].arguments"
                )
            called.add(call.id)
        if message.role == "tool" and message.tool_call_id not in called:
            raise InvalidInput("it answers no earlier tool call", field=f"messages[{i}].tool_call_id")
