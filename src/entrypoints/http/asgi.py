"""Entry for ASGI servers (`uvicorn entrypoints.http.asgi:app_from_environment --factory`)."""

from litestar import Litestar

from entrypoints.http.app import create_app
from entrypoints.settings import load_settings


def app_from_environment() -> Litestar:
    return create_app(load_settings())
