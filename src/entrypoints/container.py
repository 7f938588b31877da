"""dishka wiring: the only module that names concrete adapters (HTTP and CLI share it)."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
from dishka import AnyOf, AsyncContainer, Provider, Scope, make_async_container, provide, provide_all
from dishka.integrations.litestar import LitestarProvider
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.llm.anthropic_messages import AnthropicMessagesProvider
from adapters.llm.gemini import GeminiProvider
from adapters.llm.http_transport import upstream_client
from adapters.llm.openai_chat import OpenAIChatProvider
from adapters.llm.registry import StaticProviderRegistry
from adapters.llm.simulator import SimulatorProvider
from adapters.llm.token_counter import ApproximateTokenCounter
from adapters.postgres.catalog import ModelCache, PgCatalog, PgModelLookup
from adapters.postgres.change_feed import ChangeFeed
from adapters.postgres.comparison import PgApiKeys, PgNonceStore, PgReferences, PgTypeProfiles
from adapters.postgres.engine import AutocommitEngine, autocommit, create_engine, create_session_factory
from adapters.postgres.generation_billing import PgGenerationBilling
from adapters.postgres.generation_records import PgGenerationRecords
from adapters.postgres.housekeeping import PgHousekeeping
from adapters.postgres.idempotency import PgIdempotencyStore
from adapters.postgres.principals import PgPrincipalReader, StandingCache
from adapters.postgres.probe import PgDatabaseProbe
from adapters.postgres.refresh_tokens import PgRefreshTokenStore
from adapters.postgres.statements import StatementPool
from adapters.postgres.throttle import PgThrottleCounter
from adapters.postgres.unit_of_work import SqlaUnitOfWork
from adapters.postgres.user_repository import PgUserRepository
from adapters.postgres.wallet_ledger import PgWalletLedger
from adapters.prometheus_metrics import PrometheusGenerationMetrics
from adapters.rate_limit.memory import MemoryRateLimiter
from adapters.rate_limit.redis_store import RedisRateLimiter, redis_client
from adapters.security.aes_gcm_cipher import AesGcmCipher, parse_master_keys
from adapters.security.argon2_hasher import Argon2PasswordHasher
from adapters.security.jwt_tokens import JwtAccessTokens
from adapters.system_clock import SystemClock, UuidGenerator
from application.accounts.authenticate import Authenticate
from application.accounts.create_admin import CreateAdmin
from application.accounts.login import LoginUser
from application.accounts.me import GetMe, GetMyBalance, ListMyTransactions
from application.accounts.policy import AccountPolicy
from application.accounts.refresh import Logout, RefreshSession
from application.accounts.register import RegisterUser
from application.accounts.sessions import SessionTokens
from application.admin.balance import AdjustBalance
from application.admin.usage import GetUsage
from application.admin.users import GetUser, ListUsers, ListUserTransactions, UpdateUser
from application.catalog.use_cases import (
    AdminListModels,
    CreateModel,
    DeleteModel,
    GetModel,
    ListModels,
    ListOpenAIModels,
    UpdateModel,
)
from application.comparison.billing import GetKeyBilling, GetKeysActivity
from application.comparison.key_login import KeyLogin
from application.comparison.keys import CreateKey, ListKeys, RevokeKey, UpdateKey
from application.comparison.rotate_secrets import ReencryptSecrets
from application.comparison.subscription import GetSubscription
from application.comparison.texts import CompareText, CreateReference, KeyContext, ReferenceStorage
from application.comparison.typeids import CreateTypeId, DeleteTypeId, GetTypeId, ListTypeIds, ReplaceTypeId
from application.generations.create import CreateGeneration
from application.generations.housekeeping import HousekeepingPolicy, PurgeExpiredRecords
from application.generations.open_runs import LiveRuns, OpenRuns
from application.generations.openai_chat import CreateChatCompletion
from application.generations.queries import GetGeneration, ListGenerations
from application.generations.reaper import ReapExpiredGenerations
from application.generations.run import GenerationPolicy
from application.generations.start import StartGeneration
from application.health.check_readiness import CheckReadiness
from application.limits.quota import Quotas, RateLimitPolicy
from application.ports.billing import GenerationBilling
from application.ports.catalog import Catalog, ModelLookup
from application.ports.clock import Clock, IdGenerator
from application.ports.comparison import ApiKeys, NonceStore, References, TypeProfiles
from application.ports.generations import GenerationRecords
from application.ports.health import DatabaseProbe
from application.ports.housekeeping import Housekeeping
from application.ports.llm import LLMProvider, ProviderRegistry, TokenCounter
from application.ports.metrics import GenerationMetrics
from application.ports.persistence import (
    IdempotencyStore,
    RefreshTokenStore,
    ThrottleCounter,
    UnitOfWork,
    UserRepository,
    WalletLedger,
)
from application.ports.rate_limit import RateLimiter
from application.ports.security import AccessTokens, IdentityProvider, PasswordHasher, PrincipalReader, SecretCipher
from domain.credits import Credits
from entrypoints.http.identity import BearerIdentity
from entrypoints.settings import Settings

UPSTREAM_MAX_CONNECTIONS = 1000


class DatabaseProvider(Provider):
    @provide(scope=Scope.APP)
    async def engine(self, settings: Settings) -> AsyncIterator[AsyncEngine]:
        engine = create_engine(
            settings.require_database_url(),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            timeout_seconds=settings.db_timeout_seconds,
            pgbouncer=settings.db_pgbouncer,
        )
        yield engine
        await engine.dispose()

    @provide(scope=Scope.APP)
    async def statement_pool(self, settings: Settings) -> AsyncIterator[StatementPool]:
        """The money path's own connections: up to DB_POOL_SIZE more per process (docs/scaling.md)."""
        async with StatementPool.opened(
            settings.require_database_url(),
            size=settings.db_pool_size,
            timeout_seconds=settings.db_timeout_seconds,
            pgbouncer=settings.db_pgbouncer,
        ) as pool:
            yield pool

    @provide(scope=Scope.APP)
    async def change_feed(self, settings: Settings) -> AsyncIterator[ChangeFeed]:
        """PgBouncer in transaction mode cannot LISTEN: there, caches stay bypassed."""
        database_url = None if settings.db_pgbouncer else settings.require_database_url()
        feed = ChangeFeed(database_url, settings.db_timeout_seconds)
        listening = asyncio.create_task(feed.run(), name="change-feed")
        yield feed
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)

    model_cache = provide(ModelCache, scope=Scope.APP)
    standing_cache = provide(StandingCache, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def autocommit_engine(self, engine: AsyncEngine) -> AutocommitEngine:
        return autocommit(engine)

    @provide(scope=Scope.APP)
    def session_factory(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        return create_session_factory(engine)

    @provide(scope=Scope.REQUEST)
    async def session(self, factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
        async with factory() as session:
            yield session

    database_probe = provide(PgDatabaseProbe, provides=DatabaseProbe, scope=Scope.APP)
    unit_of_work = provide(SqlaUnitOfWork, provides=UnitOfWork, scope=Scope.REQUEST)
    users = provide(PgUserRepository, provides=UserRepository, scope=Scope.REQUEST)
    principals = provide(PgPrincipalReader, provides=PrincipalReader, scope=Scope.APP)
    ledger = provide(PgWalletLedger, provides=WalletLedger, scope=Scope.REQUEST)
    idempotency = provide(PgIdempotencyStore, provides=IdempotencyStore, scope=Scope.REQUEST)
    throttle = provide(PgThrottleCounter, provides=ThrottleCounter, scope=Scope.REQUEST)
    refresh_tokens = provide(PgRefreshTokenStore, provides=RefreshTokenStore, scope=Scope.REQUEST)
    model_lookup = provide(PgModelLookup, scope=Scope.APP, provides=AnyOf[PgModelLookup, ModelLookup])
    catalog = provide(PgCatalog, provides=Catalog, scope=Scope.REQUEST)
    generation_records = provide(PgGenerationRecords, provides=GenerationRecords, scope=Scope.REQUEST)
    generation_billing = provide(PgGenerationBilling, provides=GenerationBilling, scope=Scope.APP)
    type_profiles = provide(PgTypeProfiles, provides=TypeProfiles, scope=Scope.REQUEST)
    api_keys = provide(PgApiKeys, provides=ApiKeys, scope=Scope.REQUEST)
    nonces = provide(PgNonceStore, provides=NonceStore, scope=Scope.REQUEST)
    references = provide(PgReferences, provides=References, scope=Scope.REQUEST)


class ModelProvidersProvider(Provider):
    scope = Scope.APP

    token_counter = provide(ApproximateTokenCounter, provides=TokenCounter)

    @provide
    async def http_client(self, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
        timeout = httpx.Timeout(
            settings.upstream_read_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
        )
        async with upstream_client(timeout, UPSTREAM_MAX_CONNECTIONS, keepalive_seconds=30) as client:
            yield client

    @provide
    def registry(self, settings: Settings, client: httpx.AsyncClient, counter: TokenCounter) -> ProviderRegistry:
        """The simulator always; a vendor when its key or base URL is set. Base URLs come from the environment only."""
        providers: dict[str, LLMProvider] = {"simulator": SimulatorProvider(counter, settings.simulator_token_delay_ms)}
        if settings.openai_api_key or settings.openai_base_url:
            base_url = settings.openai_base_url or "https://api.openai.com/v1"
            providers["openai"] = OpenAIChatProvider(client, base_url, settings.openai_api_key, counter)
        if settings.anthropic_api_key or settings.anthropic_base_url:
            base_url = settings.anthropic_base_url or "https://api.anthropic.com"
            providers["anthropic"] = AnthropicMessagesProvider(client, base_url, settings.anthropic_api_key, counter)
        if settings.gemini_api_key or settings.gemini_base_url:
            base_url = settings.gemini_base_url or "https://generativelanguage.googleapis.com"
            providers["gemini"] = GeminiProvider(client, base_url, settings.gemini_api_key, counter)
        if settings.local_model_base_url:  # the sidecar `serve` started, or any OpenAI-compatible local server
            providers["local"] = OpenAIChatProvider(
                client, settings.local_model_base_url, settings.local_model_api_key, counter
            )
        return StaticProviderRegistry(providers)

    @provide
    def generation_policy(self, settings: Settings) -> GenerationPolicy:
        return GenerationPolicy(lease=timedelta(seconds=settings.generation_lease_seconds))

    @provide
    def housekeeping_policy(self, settings: Settings) -> HousekeepingPolicy:
        return HousekeepingPolicy(reference_retention=timedelta(days=settings.reference_retention_days))

    reaper = provide(ReapExpiredGenerations)
    purge = provide(PurgeExpiredRecords)
    housekeeping = provide(PgHousekeeping, provides=Housekeeping)
    metrics = provide(PrometheusGenerationMetrics, provides=GenerationMetrics)


class SecurityProvider(Provider):
    scope = Scope.APP

    clock = provide(SystemClock, provides=Clock)
    ids = provide(UuidGenerator, provides=IdGenerator)

    @provide
    def password_hasher(self, settings: Settings) -> PasswordHasher:
        return Argon2PasswordHasher.for_profile(settings.argon2_profile)

    @provide
    def secret_cipher(self, settings: Settings) -> SecretCipher:
        return AesGcmCipher(parse_master_keys(settings.require_secret_keys()))

    @provide
    def access_tokens(self, settings: Settings) -> AccessTokens:
        return JwtAccessTokens(settings.require_jwt_secret())

    @provide
    def reference_storage(self, settings: Settings) -> ReferenceStorage:
        return ReferenceStorage(bytes_per_user=settings.reference_storage_bytes_per_user)

    @provide
    def account_policy(self, settings: Settings) -> AccountPolicy:
        return AccountPolicy(
            signup_credits=Credits.parse(settings.signup_credits),
            login_failure_limit=settings.login_failure_limit,
            registrations_per_hour=settings.rate_limit_registrations_per_hour,
        )


class RateLimitProvider(Provider):
    scope = Scope.APP

    @provide
    async def rate_limiter(self, settings: Settings) -> AsyncIterator[RateLimiter]:
        """Memory windows by default; Redis (one pooled client for the process) when REDIS_URL is set."""
        if not settings.redis_url:
            yield MemoryRateLimiter()
            return
        async with redis_client(settings.redis_url, settings.rate_limit_redis_timeout_ms / 1000) as client:
            yield RedisRateLimiter(client, settings.rate_limit_redis_prefix)

    @provide
    def rate_limit_policy(self, settings: Settings) -> RateLimitPolicy:
        return RateLimitPolicy(
            user_rpm=settings.rate_limit_user_rpm,
            key_rpm=settings.rate_limit_key_rpm,
            user_tpm=settings.rate_limit_user_tpm,
            key_tpm=settings.rate_limit_key_tpm,
        )

    quotas = provide(Quotas)


class HttpProvider(Provider):
    identity = provide(BearerIdentity, provides=IdentityProvider, scope=Scope.REQUEST)
    live_runs = provide(LiveRuns, scope=Scope.APP)

    @provide(scope=Scope.REQUEST)
    async def open_runs(self, live: LiveRuns) -> AsyncIterator[OpenRuns]:
        runs = OpenRuns(live)
        yield runs
        await runs.close_all()


class UseCaseProvider(Provider):
    scope = Scope.REQUEST

    use_cases = provide_all(
        CheckReadiness,
        Authenticate,
        SessionTokens,
        RegisterUser,
        LoginUser,
        RefreshSession,
        Logout,
        GetMe,
        GetMyBalance,
        ListMyTransactions,
        ListUsers,
        GetUser,
        UpdateUser,
        ListUserTransactions,
        AdjustBalance,
        GetUsage,
        ListModels,
        ListOpenAIModels,
        AdminListModels,
        GetModel,
        CreateModel,
        UpdateModel,
        DeleteModel,
        StartGeneration,
        CreateGeneration,
        CreateChatCompletion,
        ListGenerations,
        GetGeneration,
        CreateTypeId,
        ListTypeIds,
        GetTypeId,
        ReplaceTypeId,
        DeleteTypeId,
        CreateKey,
        ListKeys,
        UpdateKey,
        RevokeKey,
        GetSubscription,
        KeyLogin,
        KeyContext,
        CreateReference,
        CompareText,
        GetKeyBilling,
        GetKeysActivity,
    )


class CommandLineProvider(Provider):
    scope = Scope.REQUEST

    use_cases = provide_all(CreateAdmin, ReencryptSecrets)


def build_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    return make_async_container(
        DatabaseProvider(),
        SecurityProvider(),
        ModelProvidersProvider(),
        RateLimitProvider(),
        UseCaseProvider(),
        HttpProvider(),
        LitestarProvider(),
        *overrides,
        context={Settings: settings},
    )


def build_cli_container(settings: Settings) -> AsyncContainer:
    """The same wiring without the HTTP request: for commands such as create-admin."""
    return make_async_container(
        DatabaseProvider(), SecurityProvider(), CommandLineProvider(), context={Settings: settings}
    )
