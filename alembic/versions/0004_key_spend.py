"""An API key's spend kept beside its limit, so the credit_limit check is atomic with the pre-charge.

`api_keys.spent_micros` is what the key has spent plus what its running generations hold in reserve;
`generations.key_reserved` is the reserve one generation holds (replaced by its cost when it settles).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("spent_micros", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("generations", sa.Column("key_reserved", sa.BigInteger, nullable=False, server_default="0"))
    # A running generation reserves its pre-charge (its cost so far); a finished one its cost.
    op.execute("UPDATE generations SET key_reserved = cost WHERE api_key IS NOT NULL")
    # What each key spent is what its ledger rows took from the owner's wallet.
    op.execute(
        """
        UPDATE api_keys SET spent_micros = spent.total
        FROM (SELECT api_key, -SUM(amount) AS total FROM ledger_entries
              WHERE api_key IS NOT NULL GROUP BY api_key) AS spent
        WHERE api_keys.api_key = spent.api_key
        """
    )


def downgrade() -> None:
    op.drop_column("generations", "key_reserved")
    op.drop_column("api_keys", "spent_micros")
