"""dishka wiring: the only module that names concrete adapters (HTTP and CLI share it)."""

from collections.abc import AsyncIterator

from dishka import AsyncContainer, Provider, Scope, make_async_container, provide, provide_all
from dishka.integrations.litestar import LitestarProvider
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.postgres.engine import create_engine, create_session_factory
from adapters.postgres.probe import PgDatabaseProbe
from adapters.postgres.unit_of_work import SqlaUnitOfWork
from application.health.check_readiness import CheckReadiness
from application.ports.health import DatabaseProbe
from application.ports.persistence import UnitOfWork
from entrypoints.settings import Settings


class DatabaseProvider(Provider):
    @provide(scope=Scope.APP)
    async def engine(self, settings: Settings) -> AsyncIterator[AsyncEngine]:
        engine = create_engine(
            settings.require_database_url(),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            timeout_seconds=settings.db_timeout_seconds,
        )
        yield engine
        await engine.dispose()

    @provide(scope=Scope.APP)
    def session_factory(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        return create_session_factory(engine)

    @provide(scope=Scope.REQUEST)
    async def session(self, factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
        async with factory() as session:
            yield session

    unit_of_work = provide(SqlaUnitOfWork, provides=UnitOfWork, scope=Scope.REQUEST)
    database_probe = provide(PgDatabaseProbe, provides=DatabaseProbe, scope=Scope.APP)


class UseCaseProvider(Provider):
    scope = Scope.REQUEST

    use_cases = provide_all(CheckReadiness)


def build_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    return make_async_container(
        DatabaseProvider(),
        UseCaseProvider(),
        LitestarProvider(),
        *overrides,
        context={Settings: settings},
    )
