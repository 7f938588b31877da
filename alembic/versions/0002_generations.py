"""Generations: the model catalog (with the default models) and the generation records billed through the ledger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
MICROS = 1_000_000


def upgrade() -> None:
    models = op.create_table(
        "models",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("upstream_model", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("unit_tokens", sa.BigInteger, nullable=False),
        sa.Column("input_credits", sa.BigInteger, nullable=False),
        sa.Column("output_credits", sa.BigInteger, nullable=False),
        sa.Column("max_output_tokens", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("unit_tokens > 0", name="ck_models_unit_tokens_positive"),
        sa.CheckConstraint("input_credits >= 0 AND output_credits >= 0", name="ck_models_prices_not_negative"),
        sa.CheckConstraint("max_output_tokens > 0", name="ck_models_max_output_tokens_positive"),
    )
    op.bulk_insert(
        models,
        [
            {
                "id": "dr14",
                "provider": "simulator",
                "upstream_model": "dr14",
                "description": "Built-in simulator priced like a large model: 100 tokens = 20 credits.",
                "unit_tokens": 100,
                "input_credits": 20 * MICROS,
                "output_credits": 20 * MICROS,
                "max_output_tokens": 4096,
            },
            {
                "id": "gemini-flash",
                "provider": "simulator",
                "upstream_model": "gemini-flash",
                "description": "Built-in simulator priced like a fast model: 100 tokens = 1 credit.",
                "unit_tokens": 100,
                "input_credits": 1 * MICROS,
                "output_credits": 1 * MICROS,
                "max_output_tokens": 4096,
            },
        ],
    )
    op.create_table(
        "generations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", name="fk_generations_user_id_users"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("api_key", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("unit_tokens", sa.BigInteger, nullable=False),
        sa.Column("input_credits", sa.BigInteger, nullable=False),
        sa.Column("output_credits", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("usage_source", sa.Text, nullable=False, server_default="counter"),
        sa.Column("precharged", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.BigInteger, nullable=False),
        sa.Column("output", sa.Text),
        sa.Column("error_code", sa.Text),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", TIMESTAMP),
        sa.CheckConstraint("status IN ('running', 'completed', 'cancelled', 'failed')", name="ck_generations_status"),
        sa.CheckConstraint("kind IN ('generation', 'comparison')", name="ck_generations_kind"),
    )
    op.create_index("ix_generations_user_id_created_at", "generations", ["user_id", "created_at"])
    op.create_index(
        "ix_generations_running_lease",
        "generations",
        ["lease_expires_at"],
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_foreign_key(
        "fk_ledger_entries_generation_id_generations", "ledger_entries", "generations", ["generation_id"], ["id"]
    )


def downgrade() -> None:
    op.drop_constraint("fk_ledger_entries_generation_id_generations", "ledger_entries", type_="foreignkey")
    op.drop_table("generations")
    op.drop_table("models")
