"""The admin console: server-rendered pages under `/admin`, on the admin API's use cases.

Conventions for every page (one module per page under `entrypoints.console.pages`):

- Registering: the module exposes `handlers` (its route handlers, paths relative to `/admin`); add it to `PAGES`
  below and its link to `NAV` in `templates/base.html`. Handlers take `HTMXRequest`, use cases by `FromDishka`,
  form bodies as `URLEncodedBody[dict[str, str]]`, and return `rendering.page(...)`. Every handler is behind the
  admin session guard; a handler with `opt={"public": True}` (sign-in only) is not.
- CSRF: every `<form method="post">` puts `{{ csrf_input | safe }}` first; htmx requests carry the token in the
  `X-CSRFToken` header that `base.html` sets on `<body hx-headers>`. A post without it answers 403 `csrf_failed`.
- Errors: parse a form with `forms.parse(data, TheUseCaseStruct)` (raises `FormInvalid`), catch `DomainError`
  around the use case and turn it into `forms.errors_of(error, field="the_field")`; render with
  `rendering.form_page(...)` (422). Templates show them with `{{ field_error(errors, "amount") }}` from
  `macros.html`: the message in words and the API's `code`. Errors of no field go under `forms.FORM_LEVEL`.
  Unhandled `DomainError`s render `error.html` with the API's status and code; an ended session redirects to
  sign-in (an `HX-Redirect` for htmx), a non-admin gets 403 `forbidden`.
- htmx: pass `partial="pages/x/_part.html"` to `page()`; the full template `{% include %}`s the same partial, so
  an `hx-get`/`hx-post` gets the fragment and a plain navigation the whole page.
- Idempotent money forms carry `<input type="hidden" name="idempotency_key" value="{{ submission_key }}">` made
  by `forms.submission_key()` when the form is rendered.
"""

from importlib.metadata import distribution
from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar_htmx import HTMXRequest

from entrypoints.console.auth import CONSOLE_PATH, console_middleware, require_console_admin
from entrypoints.console.pages import dashboard, generations, keys, models, session, typeids, usage, users
from entrypoints.console.rendering import EXCEPTION_HANDLERS

_HERE = Path(__file__).parent
_HTMX = distribution("django-js-lib-htmx")
_HTMX_FILES = Path(str(_HTMX.locate_file("js_lib_htmx/static/htmx")))
_ONE_YEAR = 365 * 24 * 3600
STATIC_PATH = f"{CONSOLE_PATH}/static"
HTMX_URL = f"{STATIC_PATH}/htmx-{_HTMX.version}/htmx.min.js"
PAGES = (session, dashboard, users, models, typeids, keys, generations, usage)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    def add_globals(engine: JinjaTemplateEngine) -> None:
        engine.engine.globals.update(htmx_url=HTMX_URL, static_url=STATIC_PATH)

    return TemplateConfig(directory=_HERE / "templates", engine=JinjaTemplateEngine, engine_callback=add_globals)


def console_routers(jwt_secret: str, *, production: bool) -> list[Router]:
    pages = Router(
        CONSOLE_PATH,
        route_handlers=[handler for module in PAGES for handler in module.handlers],
        guards=[require_console_admin],
        middleware=console_middleware(jwt_secret, production=production),
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=HTMXRequest,
        include_in_schema=False,
    )
    return [pages, _static(STATIC_PATH, _HERE / "static"), _static(HTMX_URL.rsplit("/", 1)[0], _HTMX_FILES)]


def _static(path: str, directory: Path) -> Router:
    return create_static_files_router(
        path=path,
        directories=[directory],
        name=f"console-static-{path}",
        cache_control=CacheControlHeader(public=True, max_age=_ONE_YEAR if "htmx-" in path else 300),
        include_in_schema=False,
    )
