"""`creditgate migrate | serve | create-admin`."""

import argparse
import asyncio
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import msgspec
import uvicorn
from alembic import command
from alembic.config import Config
from dishka import AsyncContainer

from application.accounts.create_admin import CreateAdmin
from application.accounts.register import Registration
from application.comparison.rotate_secrets import ReencryptSecrets, RotationReport
from application.ports.catalog import Catalog
from application.ports.persistence import UnitOfWork
from domain.user import User
from entrypoints import local_model
from entrypoints.container import build_cli_container
from entrypoints.embedded_db import embedded_postgres
from entrypoints.settings import HttpSettings, Settings, SettingsError, load_settings
from entrypoints.shared_metrics import shared_metrics_directory

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKER_HEALTHCHECK_TIMEOUT_S = 60


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.exit(f"creditgate: {exc}")
    with _database(settings) as settings_with_database:
        args.run(args, settings_with_database)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="creditgate", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="command")

    migrate = commands.add_parser("migrate", help="alembic upgrade head on DATABASE_URL")
    migrate.set_defaults(run=_migrate)

    serve = commands.add_parser("serve", help="migrate, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: PORT, else 3000")
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--ssl-certfile")
    serve.add_argument("--ssl-keyfile")
    serve.add_argument("--no-migrate", action="store_true", help="do not run migrations before serving")
    serve.set_defaults(run=_serve)

    create_admin = commands.add_parser("create-admin", help="create the admin, or promote an existing user")
    create_admin.add_argument("--username", required=True)
    create_admin.add_argument("--password", required=True)
    create_admin.add_argument("--email")
    create_admin.set_defaults(run=_create_admin)

    rotate = commands.add_parser(
        "reencrypt-secrets", help="after a SECRET_KEYS rotation, re-encrypt every API key secret with the first key"
    )
    rotate.set_defaults(run=_reencrypt_secrets)
    return parser


@contextmanager
def _database(settings: Settings) -> Iterator[Settings]:
    """The settings with a database: DATABASE_URL's, else an embedded PostgreSQL for as long as the command runs."""
    if settings.database.url:
        yield settings
        return
    with embedded_postgres(settings.runtime.data_dir) as url:
        os.environ["DATABASE_URL"] = url  # worker processes inherit it
        yield msgspec.structs.replace(settings, database=msgspec.structs.replace(settings.database, url=url))


def run_migrations(database_url: str) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


def _migrate(args: argparse.Namespace, settings: Settings) -> None:
    run_migrations(settings.database.require_url())


def _create_admin(args: argparse.Namespace, settings: Settings) -> None:
    try:
        registration = msgspec.convert(
            {"username": args.username, "password": args.password, "email": args.email}, Registration
        )
    except msgspec.ValidationError as exc:
        sys.exit(f"creditgate: {exc}")
    run_migrations(settings.database.require_url())
    user = asyncio.run(create_admin(settings, registration))
    print(f"admin {user.username} ({user.id}) is ready")


async def create_admin(settings: Settings, registration: Registration) -> User:
    async with _command(settings) as request:
        return await (await request.get(CreateAdmin))(registration)


def _reencrypt_secrets(args: argparse.Namespace, settings: Settings) -> None:
    run_migrations(settings.database.require_url())
    report = asyncio.run(reencrypt_secrets(settings))
    print(msgspec.json.encode(report).decode())
    if report.unreadable:
        sys.exit(1)


async def reencrypt_secrets(settings: Settings) -> RotationReport:
    async with _command(settings) as request:
        return await (await request.get(ReencryptSecrets))()


@asynccontextmanager
async def _command(settings: Settings) -> AsyncIterator[AsyncContainer]:
    container = build_cli_container(settings)
    try:
        async with container() as request:
            yield request
    finally:
        await container.close()


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        sys.exit("creditgate: --ssl-certfile and --ssl-keyfile go together")
    if not args.no_migrate:
        run_migrations(settings.database.require_url())
    sidecar = _start_local_model(settings)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; turning it into SystemExit(0) lets the
    # embedded database stop in its `finally` instead of the process dying with it still running.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    try:
        with shared_metrics_directory(args.workers):
            _run_uvicorn(args, settings.http)
    finally:
        if sidecar is not None:
            sidecar.stop()


def _run_uvicorn(args: argparse.Namespace, http: HttpSettings) -> None:
    uvicorn.run(
        "entrypoints.http.asgi:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port if args.port is not None else http.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        ssl_context_factory=tls_context if args.ssl_certfile else None,
        proxy_headers=bool(http.trusted_proxy_list),
        forwarded_allow_ips=http.trusted_proxy_list,
        timeout_graceful_shutdown=10,
        # A spawned worker answers the supervisor's health check only once it has imported the app (2-3 s of CPU);
        # with uvicorn's default of 5 s, a busy machine got workers killed and respawned forever.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_S,
    )


def _start_local_model(settings: Settings) -> local_model.LocalModelSidecar | None:
    """With the `local` extra and unless LOCAL_MODEL=off: `smollm2-135m` in the catalog (insert-if-absent) and,
    unless LOCAL_MODEL_BASE_URL already names a server, one sidecar shared by every worker through the environment."""
    if settings.local_model.mode == "off" or not local_model.is_installed():
        return None
    asyncio.run(_ensure_local_model_in_catalog(settings))
    if settings.local_model.base_url:
        return None
    sidecar = local_model.LocalModelSidecar(
        local_model.SidecarConfig(threads=settings.local_model.threads, context=settings.local_model.context)
    )
    sidecar.start()
    os.environ["LOCAL_MODEL_BASE_URL"] = sidecar.base_url  # uvicorn's workers and the factory read these
    os.environ["LOCAL_MODEL_API_KEY"] = sidecar.api_key
    print(f"creditgate: local model {local_model.MODEL_ID} serving on {sidecar.base_url}", file=sys.stderr)
    return sidecar


async def _ensure_local_model_in_catalog(settings: Settings) -> None:
    async with _command(settings) as request:
        await local_model.ensure_in_catalog(await request.get(Catalog), await request.get(UnitOfWork))


def tls_context(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's context from the cert and key, refusing TLS 1.1 and older."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)
