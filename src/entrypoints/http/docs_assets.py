"""Swagger UI and Redoc's files, served by the service: the docs pages work offline and load nothing from elsewhere.

drf-spectacular-sidecar ships them as plain files (Swagger UI 5 from `swagger-ui-dist`, Redoc's standalone bundle).
Its `__init__` imports Django, which is not installed (see pyproject.toml), so its files are located from its
distribution's metadata, never by importing it. The URLs carry the package's version: the files are cached for good,
and an upgrade changes every URL.
"""

from importlib.metadata import distribution
from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

DOCS_PATH = "/api-docs"
_SIDECAR = distribution("drf-spectacular-sidecar")
_STATIC = Path(str(_SIDECAR.locate_file("drf_spectacular_sidecar/static/drf_spectacular_sidecar")))
_PREFIX = f"{DOCS_PATH}/assets/{_SIDECAR.version}"
_ONE_YEAR = 365 * 24 * 3600
_PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src blob:"
)


def asset_url(name: str) -> str:
    """`name` is relative to the package's static directory, e.g. `redoc/bundles/redoc.standalone.js`."""
    return f"{_PREFIX}/{name}"


def page_head() -> str:
    """What Litestar puts first in a docs page's <head> (its `favicon`): the local favicon, and a policy that keeps
    the page from loading anything from another origin (Redoc's sidebar asks a CDN for its logo: refused)."""
    favicon = asset_url("swagger-ui-dist/favicon-32x32.png")
    return (
        f"<link rel='icon' type='image/png' href='{favicon}'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_PAGE_POLICY}\">"
    )


def docs_assets_router() -> Router:
    return create_static_files_router(
        path=_PREFIX,
        directories=[_STATIC],
        name="docs-assets",
        cache_control=CacheControlHeader(public=True, max_age=_ONE_YEAR, immutable=True),
        include_in_schema=False,
    )
