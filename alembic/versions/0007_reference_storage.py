"""An index on the owner of stored references: an upload sums the owner's stored bytes (its storage quota).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_text_references_user_id", "text_references", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_text_references_user_id", table_name="text_references")
