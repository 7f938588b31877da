"""The HTTP entry point's own parts: who the bearer is, and the generation streams a request keeps open."""

from collections.abc import AsyncIterator

from dishka import Provider, Scope, provide

from application.generations.open_runs import LiveRuns, OpenRuns
from application.ports.security import IdentityProvider
from entrypoints.http.identity import BearerIdentity


class HttpProvider(Provider):
    identity = provide(BearerIdentity, provides=IdentityProvider, scope=Scope.REQUEST)
    live_runs = provide(LiveRuns, scope=Scope.APP)

    @provide(scope=Scope.REQUEST)
    async def open_runs(self, live: LiveRuns) -> AsyncIterator[OpenRuns]:
        runs = OpenRuns(live)
        yield runs
        await runs.close_all()
