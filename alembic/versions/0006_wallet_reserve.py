"""The output reserve of running generations, held against the wallet, so the overdraft is one completion at most.

`wallets.reserved_micros` is what the user's running generations may still charge for their completions
(`max_tokens` times the output price, each); a generation starts only while `balance - reserved_micros` is positive and
covers its pre-charge. `generations.wallet_reserved` is the reserve one generation holds, released when it
settles. Generations already running hold none (they were admitted without one).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("wallets", sa.Column("reserved_micros", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("generations", sa.Column("wallet_reserved", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("generations", "wallet_reserved")
    op.drop_column("wallets", "reserved_micros")
