"""Changes that per-process caches depend on are announced with NOTIFY, whoever writes them (API, CLI, SQL).

A trigger publishes `<table>:<key>` on the channel `creditgate_changes` after each change of a row (`<table>`
alone after a TRUNCATE); every
instance LISTENs and drops what it cached for that key (adapters/postgres/change_feed.py). Only the columns a
cache holds fire it: NOTIFY serializes the commits of the transactions that send one, so hot updates must not.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, key column, the columns a cache holds: None = every change). Inserts of users and keys need no notice:
# absent rows are never cached.
_ANNOUNCED: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("models", "id", None),
    ("users", "id", ("role", "is_active", "sessions_valid_after")),
    ("api_keys", "api_key", ("user_id", "status", "expires_at", "sessions_valid_after")),
)


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION creditgate_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_LEVEL = 'STATEMENT' THEN  -- TRUNCATE: every row of the table
                PERFORM pg_notify('creditgate_changes', TG_TABLE_NAME);
            ELSE
                PERFORM pg_notify(
                    'creditgate_changes',
                    TG_TABLE_NAME || ':' || (COALESCE(to_jsonb(NEW), to_jsonb(OLD)) ->> TG_ARGV[0])
                );
            END IF;
            RETURN NULL;
        END $$
        """
    )
    for table, key, columns in _ANNOUNCED:
        events = "INSERT OR UPDATE OR DELETE" if columns is None else f"UPDATE OF {', '.join(columns)} OR DELETE"
        op.execute(
            f"CREATE TRIGGER {table}_announce_change AFTER {events} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION creditgate_announce_change('{key}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_announce_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION creditgate_announce_change()"
        )


def downgrade() -> None:
    for table, _, _ in _ANNOUNCED:
        op.execute(f"DROP TRIGGER {table}_announce_truncate ON {table}")
        op.execute(f"DROP TRIGGER {table}_announce_change ON {table}")
    op.execute("DROP FUNCTION creditgate_announce_change()")
