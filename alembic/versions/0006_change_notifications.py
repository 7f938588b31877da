"""Changes that per-process caches depend on are announced with NOTIFY, whoever writes them (API, CLI, SQL).

A trigger publishes `<table>:<key>` on the channel `creditgate_changes` after each change of a row (`<table>`
alone after a TRUNCATE); every
instance LISTENs and drops what it cached for that key (adapters/postgres/change_feed.py). Only the columns a
cache holds fire it: NOTIFY serializes the commits of the transactions that send one, so hot updates must not.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
    op.execute(
        """
        CREATE TRIGGER models_announce_change AFTER INSERT OR UPDATE OR DELETE ON models
        FOR EACH ROW EXECUTE FUNCTION creditgate_announce_change('id')
        """
    )
    op.execute(
        """
        CREATE TRIGGER models_announce_truncate AFTER TRUNCATE ON models
        FOR EACH STATEMENT EXECUTE FUNCTION creditgate_announce_change()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER models_announce_truncate ON models")
    op.execute("DROP TRIGGER models_announce_change ON models")
    op.execute("DROP FUNCTION creditgate_announce_change()")
