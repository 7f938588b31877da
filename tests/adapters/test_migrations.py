"""The alembic stairway: every revision upgrades, downgrades and upgrades again on an empty database."""

import asyncio

import asyncpg
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


def test_0004_backfills_key_spend_from_the_ledger(postgres_server_url: str) -> None:
    """A key's spend starts as what its ledger rows took; a running generation reserves its pre-charge."""
    with throwaway_database(postgres_server_url, migrate=False) as url:
        config = _config(url)
        command.upgrade(config, "0003")

        async def seed() -> None:
            connection = await asyncpg.connect(url)
            try:
                await connection.execute(
                    """
                    INSERT INTO users (id, username, password_hash) VALUES
                        ('00000000-0000-0000-0000-000000000001', 'owner', 'x');
                    INSERT INTO wallets (user_id, balance) VALUES ('00000000-0000-0000-0000-000000000001', 0);
                    INSERT INTO type_profiles (typeid, scale, system, user_template, model, llm)
                        VALUES ('t', 10, 's', '{reference} {text}', 'dr14', 'simulator');
                    INSERT INTO api_keys (api_key, user_id, typeid, expires_at, secret_ciphertext) VALUES
                        ('k1', '00000000-0000-0000-0000-000000000001', 't', now(), '\\x00'),
                        ('k2', '00000000-0000-0000-0000-000000000001', 't', now(), '\\x00');
                    INSERT INTO generations (id, user_id, kind, model, api_key, status, unit_tokens, input_credits,
                                             output_credits, input_tokens, precharged, cost, lease_expires_at)
                    VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000001',
                            'comparison', 'dr14', 'k1', 'completed', 100, 1, 1, 5, 300, 700, now()),
                           ('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-000000000001',
                            'comparison', 'dr14', 'k1', 'running', 100, 1, 1, 5, 200, 200, now());
                    INSERT INTO ledger_entries (id, user_id, kind, phase, amount, balance_after, generation_id, api_key)
                    VALUES (gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'admin_adjustment', NULL,
                            10000, 10000, NULL, NULL),
                           (gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'comparison', 'precharge',
                            -300, 9700, '00000000-0000-0000-0000-0000000000a1', 'k1'),
                           (gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'comparison', 'settle',
                            -400, 9300, '00000000-0000-0000-0000-0000000000a1', 'k1'),
                           (gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'comparison', 'precharge',
                            -200, 9100, '00000000-0000-0000-0000-0000000000a2', 'k1');
                    UPDATE wallets SET balance = 9100;
                    """
                )
            finally:
                await connection.close()

        async def spend() -> dict[str, tuple[int, list[int]]]:
            connection = await asyncpg.connect(url)
            try:
                keys = await connection.fetch("SELECT api_key, spent_micros FROM api_keys ORDER BY api_key")
                reserved = await connection.fetch("SELECT key_reserved FROM generations ORDER BY id")
            finally:
                await connection.close()
            return {row["api_key"]: (row["spent_micros"], [r["key_reserved"] for r in reserved]) for row in keys}

        asyncio.run(seed())
        command.upgrade(config, "0004")
        found = asyncio.run(spend())
    assert found == {"k1": (900, [700, 200]), "k2": (0, [700, 200])}
