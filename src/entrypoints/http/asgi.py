"""Entry for ASGI servers (`uvicorn entrypoints.http.asgi:app_from_environment --factory`): one call per worker."""

from litestar import Litestar

from entrypoints.http.app import create_app
from entrypoints.settings import load_settings
from entrypoints.shared_metrics import forget_dead_workers, leave_shared_metrics


def app_from_environment() -> Litestar:
    forget_dead_workers()
    app = create_app(load_settings())
    app.on_shutdown.append(leave_shared_metrics)
    return app
