"""Ending a user's or a key's sessions: tokens issued before `sessions_valid_after` stop working for good, even
after a reactivation; refresh tokens are revoked by user and by key, so both get an index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("sessions_valid_after", sa.DateTime(timezone=True)))
    op.add_column("api_keys", sa.Column("sessions_valid_after", sa.DateTime(timezone=True)))
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_index("ix_refresh_tokens_api_key", "refresh_tokens", ["api_key"])


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_api_key", "refresh_tokens")
    op.drop_index("ix_refresh_tokens_user_id", "refresh_tokens")
    op.drop_column("api_keys", "sessions_valid_after")
    op.drop_column("users", "sessions_valid_after")
