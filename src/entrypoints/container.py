"""dishka wiring, read as a table of contents, ring by ring. The providers (`entrypoints.di`, one module per
concern) are the only place that names concrete adapters; each takes from the context only the settings groups it
needs. HTTP and the CLI share them."""

from dishka import AsyncContainer, Provider, make_async_container
from dishka.integrations.litestar import LitestarProvider

from entrypoints.di.http import HttpProvider
from entrypoints.di.limits import RateLimitProvider
from entrypoints.di.llm import ModelProvidersProvider
from entrypoints.di.persistence import PersistenceProvider
from entrypoints.di.policies import PolicyProvider
from entrypoints.di.security import SecurityProvider
from entrypoints.di.system import SystemProvider
from entrypoints.di.use_cases import CommandLineProvider, UseCaseProvider
from entrypoints.settings import Settings


def build_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    return make_async_container(
        PolicyProvider(),  # domain and application policy: the operator-set rules
        UseCaseProvider(),  # application: the routes' use cases, the background sweeps, the quotas
        *_adapters_every_entry_point_needs(),
        ModelProvidersProvider(),  # adapters: the LLM providers, over one upstream HTTP client
        RateLimitProvider(),  # adapters: the rate limit windows, in memory or Redis
        HttpProvider(),  # entry point: the bearer's identity, the generation streams a request holds open
        LitestarProvider(),
        *overrides,
        context=_settings_context(settings),
    )


def build_cli_container(settings: Settings) -> AsyncContainer:
    """The same wiring without the HTTP request: for commands such as create-admin."""
    return make_async_container(
        PolicyProvider(),
        CommandLineProvider(),  # application: the commands' use cases
        *_adapters_every_entry_point_needs(),
        context=_settings_context(settings),
    )


def _adapters_every_entry_point_needs() -> tuple[Provider, ...]:
    return (
        PersistenceProvider(),  # adapters: PostgreSQL (engine, statement pool, change feed, repositories)
        SecurityProvider(),  # adapters: password hashing, secret encryption, access tokens
        SystemProvider(),  # adapters: clock, identifiers, generation metrics
    )


def _settings_context(settings: Settings) -> dict[type, object]:
    """Each group by its type: a provider asks for `DatabaseSettings`, never for all of Settings."""
    return {type(group): group for group in settings.groups()}
