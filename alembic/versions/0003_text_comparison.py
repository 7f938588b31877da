"""Text comparison: TypeID profiles, API keys (secrets encrypted), HMAC login nonces, reference texts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "type_profiles",
        sa.Column("typeid", sa.Text, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("scale", sa.Integer, nullable=False),
        sa.Column("system", sa.Text, nullable=False),
        sa.Column("user_template", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("llm", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("scale BETWEEN 2 AND 1000", name="ck_type_profiles_scale"),
    )
    op.create_table(
        "api_keys",
        sa.Column("api_key", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", name="fk_api_keys_user_id_users"), nullable=False),
        sa.Column(
            "typeid",
            sa.Text,
            sa.ForeignKey("type_profiles.typeid", name="fk_api_keys_typeid_type_profiles", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("name", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("credit_limit", sa.BigInteger),
        sa.Column("secret_ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('active', 'suspended', 'revoked')", name="ck_api_keys_status"),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_index("ix_api_keys_typeid", "api_keys", ["typeid"])
    op.create_table(
        "auth_nonces",
        sa.Column("api_key", sa.Text, primary_key=True),
        sa.Column("nonce", sa.Text, primary_key=True),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_auth_nonces_expires_at", "auth_nonces", ["expires_at"])
    op.create_table(
        "text_references",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "user_id", sa.Uuid, sa.ForeignKey("users.id", name="fk_text_references_user_id_users"), nullable=False
        ),
        sa.Column(
            "api_key",
            sa.Text,
            sa.ForeignKey("api_keys.api_key", name="fk_text_references_api_key_api_keys"),
            nullable=False,
        ),
        sa.Column("name", sa.Text),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("length", sa.Integer, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_generations_api_key_created_at", "generations", ["api_key", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_generations_api_key_created_at", "generations")
    op.drop_table("text_references")
    op.drop_table("auth_nonces")
    op.drop_table("api_keys")
    op.drop_table("type_profiles")
