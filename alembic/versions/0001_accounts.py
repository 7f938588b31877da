"""Accounts: users, wallets, the append-only ledger, refresh tokens, idempotency keys, throttle counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False, server_default="client"),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("role IN ('client', 'admin')", name="ck_users_role"),
    )
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)
    op.create_table(
        "wallets",
        sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", name="fk_wallets_user_id_users"), primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column(
            "user_id",
            sa.Uuid,
            sa.ForeignKey("wallets.user_id", name="fk_ledger_entries_user_id_wallets"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("phase", sa.Text),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("generation_id", sa.Uuid),
        sa.Column("api_key", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("actor_id", sa.Uuid),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("id", name="uq_ledger_entries_id"),
        sa.UniqueConstraint("generation_id", "phase", name="uq_ledger_entries_generation_id_phase"),
        sa.CheckConstraint("amount <> 0", name="ck_ledger_entries_amount_not_zero"),
        sa.CheckConstraint(
            "kind IN ('signup', 'admin_adjustment', 'generation', 'comparison', 'refund')",
            name="ck_ledger_entries_kind",
        ),
    )
    op.create_index("ix_ledger_entries_user_id_seq", "ledger_entries", ["user_id", "seq"])
    op.execute(
        """
        CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ledger_entries is append-only: % is not allowed', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OR DELETE ON ledger_entries "
        "FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()"
    )
    op.execute(
        "CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()"
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column("family_id", sa.Uuid, nullable=False),
        sa.Column(
            "user_id", sa.Uuid, sa.ForeignKey("users.id", name="fk_refresh_tokens_user_id_users"), nullable=False
        ),
        sa.Column("api_key", sa.Text),
        sa.Column("issued_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("used_at", TIMESTAMP),
        sa.Column("revoked_at", TIMESTAMP),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("response", sa.LargeBinary),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "throttle_counters",
        sa.Column("subject", sa.Text, primary_key=True),
        sa.Column("window_start", TIMESTAMP, primary_key=True),
        sa.Column("hits", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("throttle_counters")
    op.drop_table("idempotency_keys")
    op.drop_table("refresh_tokens")
    op.drop_table("ledger_entries")
    op.execute("DROP FUNCTION ledger_entries_append_only()")
    op.drop_table("wallets")
    op.drop_table("users")
