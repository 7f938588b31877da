"""SQLAlchemy Core tables: the schema the repositories map to and from domain values."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _created_at() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("username", Text, nullable=False),
    Column("email", Text),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False, server_default="client"),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    # Tokens issued before it no longer work (set when the user is deactivated or demoted).
    Column("sessions_valid_after", DateTime(timezone=True)),
    _created_at(),
    CheckConstraint("role IN ('client', 'admin')", name="role"),
)
Index("uq_users_username_lower", func.lower(users.c.username), unique=True)

wallets = Table(
    "wallets",
    metadata,
    Column("user_id", Uuid, ForeignKey("users.id"), primary_key=True),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("reserved_micros", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("id", Uuid, nullable=False, unique=True),
    Column("user_id", Uuid, ForeignKey("wallets.user_id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("phase", Text),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("generation_id", Uuid, ForeignKey("generations.id")),
    Column("api_key", Text),
    Column("reason", Text),
    Column("actor_id", Uuid),
    _created_at(),
    UniqueConstraint("generation_id", "phase"),
    CheckConstraint("amount <> 0", name="amount_not_zero"),
    CheckConstraint("kind IN ('signup', 'admin_adjustment', 'generation', 'comparison', 'refund')", name="kind"),
)
Index("ix_ledger_entries_user_id_seq", ledger_entries.c.user_id, ledger_entries.c.seq)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("family_id", Uuid, nullable=False, index=True),
    Column("user_id", Uuid, ForeignKey("users.id"), nullable=False, index=True),
    Column("api_key", Text, index=True),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("fingerprint", Text, nullable=False),
    Column("response", LargeBinary),
    _created_at(),
)
Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)

throttle_counters = Table(
    "throttle_counters",
    metadata,
    Column("subject", Text, primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("hits", Integer, nullable=False),
)
Index("ix_throttle_counters_window_start", throttle_counters.c.window_start)

models = Table(
    "models",
    metadata,
    Column("id", Text, primary_key=True),
    Column("provider", Text, nullable=False),
    Column("upstream_model", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("unit_tokens", BigInteger, nullable=False),
    Column("input_credits", BigInteger, nullable=False),
    Column("output_credits", BigInteger, nullable=False),
    Column("cached_input_credits", BigInteger),  # NULL: at input_credits
    Column("cache_write_credits", BigInteger),  # NULL: at input_credits
    Column("max_output_tokens", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("deployments", JSONB),  # [{provider, upstream_model, priority, weight}]; NULL: provider/upstream_model
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("unit_tokens > 0", name="unit_tokens_positive"),
    CheckConstraint("input_credits >= 0 AND output_credits >= 0", name="prices_not_negative"),
    CheckConstraint("max_output_tokens > 0", name="max_output_tokens_positive"),
    CheckConstraint("cached_input_credits >= 0 AND cache_write_credits >= 0", name="cache_prices_not_negative"),
)

generations = Table(
    "generations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("api_key", Text),
    Column("status", Text, nullable=False),
    Column("unit_tokens", BigInteger, nullable=False),
    Column("input_credits", BigInteger, nullable=False),
    Column("output_credits", BigInteger, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False, server_default="0"),
    Column("cached_input_tokens", Integer, nullable=False, server_default="0"),  # part of input_tokens
    Column("cache_write_tokens", Integer, nullable=False, server_default="0"),  # part of input_tokens
    Column("reasoning_tokens", Integer, nullable=False, server_default="0"),  # part of output_tokens
    Column("usage_source", Text, nullable=False, server_default="counter"),
    Column("precharged", BigInteger, nullable=False),
    Column("cost", BigInteger, nullable=False),
    Column("key_reserved", BigInteger, nullable=False, server_default="0"),
    Column("wallet_reserved", BigInteger, nullable=False, server_default="0"),
    Column("output", Text),
    Column("error_code", Text),
    Column("attempts", JSONB),  # [{deployment, outcome, ttft_ms}]; NULL: settled by the reaper
    Column("lease_expires_at", DateTime(timezone=True), nullable=False),
    _created_at(),
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('running', 'completed', 'cancelled', 'failed')", name="status"),
    CheckConstraint("kind IN ('generation', 'comparison')", name="kind"),
    CheckConstraint(
        "cached_input_tokens >= 0 AND cache_write_tokens >= 0 AND reasoning_tokens >= 0"
        " AND cached_input_tokens + cache_write_tokens <= input_tokens AND reasoning_tokens <= output_tokens",
        name="usage_parts",
    ),
)
Index("ix_generations_user_id_created_at", generations.c.user_id, generations.c.created_at)
Index(
    "ix_generations_running_lease",
    generations.c.lease_expires_at,
    postgresql_where=generations.c.status == "running",
)

type_profiles = Table(
    "type_profiles",
    metadata,
    Column("typeid", Text, primary_key=True),
    Column("name", Text),
    Column("scale", Integer, nullable=False),
    Column("system", Text, nullable=False),
    Column("user_template", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("llm", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("scale BETWEEN 2 AND 1000", name="scale"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("api_key", Text, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id"), nullable=False, index=True),
    Column("typeid", Text, ForeignKey("type_profiles.typeid", ondelete="RESTRICT"), nullable=False, index=True),
    Column("name", Text),
    Column("status", Text, nullable=False, server_default="active"),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("credit_limit", BigInteger),
    Column("spent_micros", BigInteger, nullable=False, server_default="0"),
    Column("secret_ciphertext", LargeBinary, nullable=False),
    # Tokens issued before it no longer work (set when the key's subscription stops or starts being active).
    Column("sessions_valid_after", DateTime(timezone=True)),
    _created_at(),
    CheckConstraint("status IN ('active', 'suspended', 'revoked')", name="status"),
)

auth_nonces = Table(
    "auth_nonces",
    metadata,
    Column("api_key", Text, primary_key=True),
    Column("nonce", Text, primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

text_references = Table(
    "text_references",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id"), nullable=False),
    Column("api_key", Text, ForeignKey("api_keys.api_key"), nullable=False, index=True),
    Column("name", Text),
    Column("content", Text, nullable=False),
    Column("length", Integer, nullable=False),
    _created_at(),
)
Index("ix_text_references_user_id", text_references.c.user_id)
Index("ix_text_references_created_at", text_references.c.created_at)
Index("ix_generations_api_key_created_at", generations.c.api_key, generations.c.created_at)
