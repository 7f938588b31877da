"""The Litestar application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dishka import Provider
from dishka.integrations.litestar import setup_dishka
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.config.response_cache import ResponseCacheConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig

from application.generations.open_runs import LiveRuns
from entrypoints.console.app import console_routers, template_config
from entrypoints.container import build_container
from entrypoints.http.allow_header import honest_allow_header
from entrypoints.http.docs_assets import DOCS_PATH, docs_assets_router
from entrypoints.http.identity import API_KEY_HEADER, API_KEY_SCHEME
from entrypoints.http.metrics import metrics_controller, networks_of
from entrypoints.http.openapi import StructSchemas, document, render_plugins
from entrypoints.http.problems import problem_details_plugin
from entrypoints.http.reaper import sweeps_running
from entrypoints.http.request_context import RequestContext
from entrypoints.http.routes import (
    admin,
    anthropic_compat,
    auth,
    comparison,
    generations,
    health,
    me,
    models,
    openai_compat,
)
from entrypoints.http.strict_bodies import strict_json_body
from entrypoints.http.transport import TransportSecurity
from entrypoints.logging import configure_logging
from entrypoints.settings import Settings

MAX_BODY_BYTES = 1024 * 1024
API_TITLE = "creditgate"
API_VERSION = "0.1.0"


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title=API_TITLE,
        version=API_VERSION,
        description="Many text LLMs behind one API, every token metered in credits.",
        path=DOCS_PATH,
        render_plugins=render_plugins(),
        components=Components(
            security_schemes={
                "BearerAuth": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
                API_KEY_SCHEME: SecurityScheme(
                    type="apiKey",
                    name=API_KEY_HEADER,
                    security_scheme_in="header",
                    description="The same access token, as Anthropic's SDK sends its key",
                ),
            }
        ),
    )


def cors_config(origins: list[str]) -> CORSConfig | None:
    """Bearer tokens, not cookies: credentials are never allowed, so `*` cannot leak an authenticated response."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        allow_credentials=False,
        expose_headers=["X-Request-ID", "X-Generation-ID", "Retry-After"],
    )


def create_app(settings: Settings, *overrides: Provider) -> Litestar:
    """Build the app; `overrides` replace providers (tests swap in fakes with `override=True`)."""
    configure_logging(settings.runtime)
    container = build_container(settings, *overrides)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            async with sweeps_running(container, settings.housekeeping):
                yield
        finally:
            await (await container.get(LiveRuns)).close_all()  # the streams the server stopped waiting for
            await container.close()

    app = Litestar(
        route_handlers=[
            health.live,
            health.ready,
            metrics_controller(settings.metrics.network_list, settings.metrics.token),
            auth.router,
            me.router,
            admin.router,
            models.models_router,
            generations.router,
            openai_compat.openai_router(models.openai_models_handler),
            anthropic_compat.anthropic_router(),
            comparison.router,
            comparison.login_router,
            docs_assets_router(),
            *console_routers(settings.security.require_jwt_secret(), production=settings.runtime.is_production),
        ],
        openapi_config=openapi_config(),
        template_config=template_config(),
        plugins=[problem_details_plugin(), StructSchemas()],
        middleware=[PrometheusConfig(app_name="creditgate", prefix="creditgate", group_path=True).middleware],
        lifespan=[lifespan],
        request_max_body_size=MAX_BODY_BYTES,
        before_send=[honest_allow_header],
        before_request=strict_json_body,
        response_cache_config=ResponseCacheConfig(),
        cors_config=cors_config(settings.http.cors_origin_list),
        logging_config=None,
        debug=False,
    )
    setup_dishka(container, app)
    document(app)
    transport = TransportSecurity(
        app.asgi_handler,
        https_only=settings.runtime.is_production,
        metrics_networks=networks_of(settings.metrics.network_list),
    )
    app.asgi_handler = RequestContext(transport)
    return app
