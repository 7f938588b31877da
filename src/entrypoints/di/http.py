"""The HTTP entry point's own parts: who the caller is (a bearer token, or a console session under `/admin`), and
the generation streams a request keeps open."""

from collections.abc import AsyncIterator

from dishka import Provider, Scope, provide
from litestar import Request

from application.accounts.authenticate import Authenticate
from application.generations.open_runs import LiveRuns, OpenRuns
from application.limits.quota import Quotas
from application.ports.clock import Clock
from application.ports.security import IdentityProvider, PrincipalReader
from entrypoints.console.auth import SessionIdentity, in_console
from entrypoints.http.identity import BearerIdentity


class HttpProvider(Provider):
    live_runs = provide(LiveRuns, scope=Scope.APP)

    @provide(scope=Scope.REQUEST)
    def identity(
        self,
        request: Request,  # type: ignore[type-arg]  # dishka keys on the bare class
        authenticate: Authenticate,
        quotas: Quotas,
        principals: PrincipalReader,
        clock: Clock,
    ) -> IdentityProvider:
        """The console's pages take no bearer token, and the API takes no cookie (so it needs no CSRF token)."""
        if in_console(request):
            return SessionIdentity(request, principals, clock)
        return BearerIdentity(request, authenticate, quotas)

    @provide(scope=Scope.REQUEST)
    async def open_runs(self, live: LiveRuns) -> AsyncIterator[OpenRuns]:
        runs = OpenRuns(live)
        yield runs
        await runs.close_all()
