"""`creditgate migrate | serve | create-admin`."""

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
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
from domain.user import User
from entrypoints.container import build_cli_container
from entrypoints.embedded_db import embedded_postgres
from entrypoints.settings import Settings, SettingsError, load_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKER_HEALTHCHECK_TIMEOUT_S = 60


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.exit(f"creditgate: {exc}")
    with _database(settings) as database_url:
        args.run(args, database_url, settings)


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
def _database(settings: Settings) -> Iterator[str]:
    if settings.database_url:
        yield settings.database_url
        return
    with embedded_postgres(settings.data_dir) as url:
        os.environ["DATABASE_URL"] = url  # worker processes inherit it
        yield url


def run_migrations(database_url: str) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


def _migrate(args: argparse.Namespace, database_url: str, settings: Settings) -> None:
    run_migrations(database_url)


def _create_admin(args: argparse.Namespace, database_url: str, settings: Settings) -> None:
    try:
        registration = msgspec.convert(
            {"username": args.username, "password": args.password, "email": args.email}, Registration
        )
    except msgspec.ValidationError as exc:
        sys.exit(f"creditgate: {exc}")
    run_migrations(database_url)
    settings = msgspec.structs.replace(settings, database_url=database_url)
    user = asyncio.run(create_admin(settings, registration))
    print(f"admin {user.username} ({user.id}) is ready")


async def create_admin(settings: Settings, registration: Registration) -> User:
    async with _command(settings) as request:
        return await (await request.get(CreateAdmin))(registration)


def _reencrypt_secrets(args: argparse.Namespace, database_url: str, settings: Settings) -> None:
    run_migrations(database_url)
    report = asyncio.run(reencrypt_secrets(msgspec.structs.replace(settings, database_url=database_url)))
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


def _serve(args: argparse.Namespace, database_url: str, settings: Settings) -> None:
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        sys.exit("creditgate: --ssl-certfile and --ssl-keyfile go together")
    if not args.no_migrate:
        run_migrations(database_url)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; turning it into SystemExit(0) lets the
    # embedded database stop in its `finally` instead of the process dying with it still running.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    uvicorn.run(
        "entrypoints.http.asgi:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port if args.port is not None else settings.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        timeout_graceful_shutdown=10,
        # A spawned worker answers the supervisor's health check only once it has imported the app (2-3 s of CPU);
        # with uvicorn's default of 5 s, a busy machine got workers killed and respawned forever.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_S,
    )


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)
