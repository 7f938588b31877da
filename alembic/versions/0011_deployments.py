"""Routing across deployments: a model lists the deployments that serve it (`[{provider, upstream_model, priority,
weight}]`), and a generation records its attempts on them.

NULL `deployments` (every model written before) means the one deployment `provider`/`upstream_model` name, so
adding the column rewrites no table and a row written without it stays valid. `attempts` is a JSONB column on the
generation rather than a table of its own: it is written by the settlement's UPDATE that exists anyway (no extra
round trip on the hot path) and read only with its generation. NULL: settled by the reaper, or written before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("models", sa.Column("deployments", JSONB))
    op.add_column("generations", sa.Column("attempts", JSONB))


def downgrade() -> None:
    op.drop_column("generations", "attempts")
    op.drop_column("models", "deployments")
