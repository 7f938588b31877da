"""dishka wiring, read as a table of contents: the only place that names concrete adapters (HTTP and CLI share
it). Each provider (`entrypoints.di.*`, one module per concern) takes from the context only the settings groups
it needs."""

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


def _shared() -> tuple[Provider, ...]:
    return (
        PolicyProvider(),  # domain and application policy: account, rate limit, generation, housekeeping rules
        PersistenceProvider(),  # adapters: PostgreSQL (engine, statement pool, change feed, repositories)
        SecurityProvider(),  # adapters: password hashing, secret encryption, access tokens
        SystemProvider(),  # adapters: clock, identifiers, generation metrics
    )


def build_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    return make_async_container(
        *_shared(),
        ModelProvidersProvider(),  # adapters: LLM providers over one upstream HTTP client
        RateLimitProvider(),  # adapters: rate limit windows (memory or Redis)
        UseCaseProvider(),  # application: use cases and the background sweeps
        HttpProvider(),  # entry point: the bearer's identity, open generation streams
        LitestarProvider(),
        *overrides,
        context=_settings_context(settings),
    )


def build_cli_container(settings: Settings) -> AsyncContainer:
    """The same wiring without the HTTP request: for commands such as create-admin."""
    return make_async_container(*_shared(), CommandLineProvider(), context=_settings_context(settings))


def _settings_context(settings: Settings) -> dict[type, object]:
    """Each group by its type: a provider asks for `DatabaseSettings`, never for all of Settings."""
    return {type(group): group for group in settings.groups()}
