"""Persistence adapters: PostgreSQL through SQLAlchemy (the session, repositories) and asyncpg (the money path's
statement pool, the change feed that keeps the in-process caches honest)."""

import asyncio
from collections.abc import AsyncIterator

from dishka import AnyOf, Provider, Scope, provide
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

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
from application.ports.billing import GenerationBilling
from application.ports.catalog import Catalog, ModelLookup
from application.ports.comparison import ApiKeys, NonceStore, References, TypeProfiles
from application.ports.generations import GenerationRecords
from application.ports.health import DatabaseProbe
from application.ports.housekeeping import Housekeeping
from application.ports.persistence import (
    IdempotencyStore,
    RefreshTokenStore,
    ThrottleCounter,
    UnitOfWork,
    UserRepository,
    WalletLedger,
)
from application.ports.security import PrincipalReader
from entrypoints.settings import DatabaseSettings


class PersistenceProvider(Provider):
    @provide(scope=Scope.APP)
    async def engine(self, database: DatabaseSettings) -> AsyncIterator[AsyncEngine]:
        engine = create_engine(
            database.require_url(),
            pool_size=database.pool_size,
            max_overflow=database.max_overflow,
            timeout_seconds=database.timeout_seconds,
            pgbouncer=database.pgbouncer,
        )
        yield engine
        await engine.dispose()

    @provide(scope=Scope.APP)
    async def statement_pool(self, database: DatabaseSettings) -> AsyncIterator[StatementPool]:
        """The money path's own connections: up to DB_POOL_SIZE more per process (docs/scaling.md)."""
        async with StatementPool.opened(
            database.require_url(),
            size=database.pool_size,
            timeout_seconds=database.timeout_seconds,
            pgbouncer=database.pgbouncer,
        ) as pool:
            yield pool

    @provide(scope=Scope.APP)
    async def change_feed(self, database: DatabaseSettings) -> AsyncIterator[ChangeFeed]:
        """PgBouncer in transaction mode cannot LISTEN: there, caches stay bypassed."""
        feed = ChangeFeed(None if database.pgbouncer else database.require_url(), database.timeout_seconds)
        listening = asyncio.create_task(feed.run(), name="change-feed")
        yield feed
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)

    model_cache = provide(ModelCache, scope=Scope.APP)
    standing_cache = provide(StandingCache, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def autocommit_engine(self, engine: AsyncEngine, database: DatabaseSettings) -> AutocommitEngine:
        return autocommit(engine, pgbouncer=database.pgbouncer)

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
    housekeeping = provide(PgHousekeeping, provides=Housekeeping, scope=Scope.APP)
    type_profiles = provide(PgTypeProfiles, provides=TypeProfiles, scope=Scope.REQUEST)
    api_keys = provide(PgApiKeys, provides=ApiKeys, scope=Scope.REQUEST)
    nonces = provide(PgNonceStore, provides=NonceStore, scope=Scope.REQUEST)
    references = provide(PgReferences, provides=References, scope=Scope.REQUEST)
