"""The alembic stairway: every revision upgrades, downgrades and upgrades again on an empty database."""

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from entrypoints.cli import PROJECT_ROOT
from tests.support.database import throwaway_database


def _config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    return config


def test_every_revision_goes_up_down_and_up_again(postgres_server_url: str) -> None:
    with throwaway_database(postgres_server_url, migrate=False) as url:
        config = _config(url)
        revisions = list(reversed(list(ScriptDirectory.from_config(config).walk_revisions())))
        for revision in revisions:
            command.upgrade(config, revision.revision)
            command.downgrade(config, revision.down_revision or "base")
            command.upgrade(config, revision.revision)


def test_there_is_a_single_head(postgres_server_url: str) -> None:
    assert len(ScriptDirectory.from_config(_config("postgresql://unused/x")).get_heads()) == 1
