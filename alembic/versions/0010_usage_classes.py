"""Usage by token class: a generation records its cached, cache-written and reasoning tokens (parts of its input
and output tokens); a model may price cached and cache-written prompt tokens apart (NULL: at `input_credits`).

Rows written before have none of either: their counts are 0 and their models' cache prices NULL, which is what
they were billed at. Adding columns with a constant default rewrites no table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USAGE_COUNTS = ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens")
CACHE_PRICES = ("cached_input_credits", "cache_write_credits")


def upgrade() -> None:
    for column in USAGE_COUNTS:
        op.add_column("generations", sa.Column(column, sa.Integer, nullable=False, server_default="0"))
    op.create_check_constraint(
        "ck_generations_usage_parts",
        "generations",
        "cached_input_tokens >= 0 AND cache_write_tokens >= 0 AND reasoning_tokens >= 0"
        " AND cached_input_tokens + cache_write_tokens <= input_tokens AND reasoning_tokens <= output_tokens",
    )
    for column in CACHE_PRICES:
        op.add_column("models", sa.Column(column, sa.BigInteger))
    op.create_check_constraint(
        "ck_models_cache_prices_not_negative", "models", "cached_input_credits >= 0 AND cache_write_credits >= 0"
    )


def downgrade() -> None:
    op.drop_constraint("ck_models_cache_prices_not_negative", "models", type_="check")
    for column in CACHE_PRICES:
        op.drop_column("models", column)
    op.drop_constraint("ck_generations_usage_parts", "generations", type_="check")
    for column in USAGE_COUNTS:
        op.drop_column("generations", column)
