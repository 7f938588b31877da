"""Housekeeping: indexes on the columns its bounded purges select by, so a batch finds its rows without
reading the whole table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_throttle_counters_window_start", "throttle_counters", "window_start"),
    ("ix_idempotency_keys_created_at", "idempotency_keys", "created_at"),
    ("ix_refresh_tokens_expires_at", "refresh_tokens", "expires_at"),
    ("ix_text_references_created_at", "text_references", "created_at"),
    ("ix_text_references_api_key", "text_references", "api_key"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table)
