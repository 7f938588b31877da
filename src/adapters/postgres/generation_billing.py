"""The generation money path. Every step is one statement run in autocommit mode (atomic, one round trip) on the
money path's own asyncpg pool (adapters/postgres/statements.py), prepared once per connection.

A generation starts only while the wallet's `available` (balance less the output reserves of the user's
running generations, `reserved_micros`) is positive and covers its pre-charge; it adds its own reserve, and its
settlement (reaper and refund included) releases exactly the `wallet_reserved` it recorded."""

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import msgspec
import structlog

from adapters.postgres.statements import Connection, StatementPool
from application.ports.billing import Abandoned, GenerationBilling, GenerationStart, Settlement
from domain.api_key import KeyCreditLimit
from domain.credits import Credits
from domain.errors import StorageUnavailable
from domain.pricing import Pricing, Usage
from domain.wallet import InsufficientBalance

log = structlog.get_logger(__name__)

# $1 generation_id, $2 entry_id, $3 user_id, $4 kind, $5 model, $6 api_key, $7 unit_tokens, $8 input_credits,
# $9 output_credits, $10 input_tokens, $11 precharge, $12 key_reserve, $13 reserve, $14 lease_expires_at,
# $15 created_at
_START = """
WITH funded AS (
    SELECT user_id, balance - reserved_micros AS available FROM wallets
    WHERE user_id = $3::uuid
    FOR UPDATE
), k AS (
    UPDATE api_keys SET spent_micros = spent_micros + $12::bigint
    WHERE api_key = $6::text
      AND (credit_limit IS NULL OR spent_micros < credit_limit)
      AND EXISTS (SELECT 1 FROM funded WHERE available > 0 AND available >= $11::bigint)
    RETURNING api_key
), w AS (
    UPDATE wallets SET balance = balance - $11::bigint, reserved_micros = reserved_micros + $13::bigint,
                       updated_at = now()
    WHERE user_id = $3::uuid AND balance - reserved_micros > 0 AND balance - reserved_micros >= $11::bigint
      AND ($6::text IS NULL OR EXISTS (SELECT 1 FROM k))
    RETURNING user_id, balance
), g AS (
    INSERT INTO generations (id, user_id, kind, model, api_key, status, unit_tokens, input_credits,
                             output_credits, input_tokens, precharged, cost, key_reserved, wallet_reserved,
                             lease_expires_at, created_at)
    SELECT $1::uuid, user_id, $4::text, $5::text, $6::text, 'running', $7::bigint, $8::bigint,
           $9::bigint, $10::integer, $11::bigint, $11::bigint,
           CASE WHEN $6::text IS NULL THEN 0 ELSE $12::bigint END, $13::bigint,
           $14::timestamptz, $15::timestamptz
    FROM w
    RETURNING id
), l AS (
    INSERT INTO ledger_entries (id, user_id, kind, phase, amount, balance_after, generation_id, api_key)
    SELECT $2::uuid, w.user_id, $4::text, 'precharge', -$11::bigint, w.balance, g.id, $6::text
    FROM w, g
    WHERE $11::bigint > 0
)
SELECT (SELECT balance FROM w) AS balance,
       EXISTS (SELECT 1 FROM funded WHERE available > 0 AND available >= $11::bigint) AS funded
"""

_CHECKPOINT = """
UPDATE generations
SET output_tokens = $2::integer, lease_expires_at = $3::timestamptz
WHERE id = $1::uuid AND status = 'running'
"""

# $1 generation_id, $2 entry_id, $3 status, $4 input_tokens, $5 output_tokens, $6 usage_source, $7 cost,
# $8 output, $9 error_code, $10 refund, $11 finished_at, $12 cached_input_tokens, $13 cache_write_tokens,
# $14 reasoning_tokens.
# The cost may be below the pre-charge (prompt tokens the provider served from its cache cost less than the
# `input_credits` they were pre-charged at): the `settle` row then gives the difference back.
_SETTLE = """
WITH g AS (
    UPDATE generations
    SET status = $3::text, input_tokens = $4::integer, output_tokens = $5::integer,
        cached_input_tokens = $12::integer, cache_write_tokens = $13::integer, reasoning_tokens = $14::integer,
        usage_source = $6::text, cost = $7::bigint, output = $8::text, error_code = $9::text,
        finished_at = $11::timestamptz, attempts = $15::jsonb
    WHERE id = $1::uuid AND status = 'running'
    RETURNING id, user_id, kind, api_key, precharged, key_reserved, wallet_reserved
), w AS (
    UPDATE wallets SET balance = wallets.balance - ($7::bigint - g.precharged),
                       reserved_micros = wallets.reserved_micros - g.wallet_reserved, updated_at = now()
    FROM g
    WHERE wallets.user_id = g.user_id
    RETURNING wallets.user_id, wallets.balance, g.precharged, g.key_reserved, g.kind, g.api_key,
              g.id AS generation_id
), k AS (
    UPDATE api_keys SET spent_micros = api_keys.spent_micros + ($7::bigint - w.key_reserved)
    FROM w
    WHERE api_keys.api_key = w.api_key AND w.key_reserved <> $7::bigint
), l AS (
    INSERT INTO ledger_entries (id, user_id, kind, phase, amount, balance_after, generation_id, api_key)
    SELECT $2::uuid, user_id,
           CASE WHEN $10::boolean THEN 'refund' ELSE kind END,
           CASE WHEN $10::boolean THEN 'refund' ELSE 'settle' END,
           precharged - $7::bigint, balance, generation_id, api_key
    FROM w
    WHERE precharged <> $7::bigint
)
SELECT balance FROM w
"""

_ATTEMPTS = msgspec.json.Encoder()

_EXPIRED = """
SELECT id, input_tokens, output_tokens, unit_tokens, input_credits, output_credits
FROM generations
WHERE status = 'running' AND lease_expires_at < $1::timestamptz
ORDER BY lease_expires_at
LIMIT $2::integer
FOR UPDATE SKIP LOCKED
"""


class PgGenerationBilling(GenerationBilling):
    def __init__(self, statements: StatementPool) -> None:
        self._statements = statements

    async def start(self, start: GenerationStart) -> Credits:
        row = await self._statements.fetchrow(
            _START,
            start.generation_id,
            start.entry_id,
            start.user_id,
            start.kind.value,
            start.model_id,
            start.api_key,
            start.pricing.unit_tokens,
            start.pricing.input_credits.micros,
            start.pricing.output_credits.micros,
            start.input_tokens,
            start.precharge.micros,
            (start.key_reserve or start.precharge).micros,
            start.reserve.micros,
            start.lease_expires_at,
            start.created_at,
        )
        if row is not None and row["balance"] is not None:
            return Credits(row["balance"])
        if start.api_key is not None and row is not None and row["funded"]:
            raise KeyCreditLimit
        raise InsufficientBalance

    async def checkpoint(self, generation_id: UUID, output_tokens: int, lease_expires_at: datetime) -> None:
        try:
            await self._statements.execute(_CHECKPOINT, generation_id, output_tokens, lease_expires_at)
        except StorageUnavailable as error:
            log.warning("checkpoint_failed", generation_id=str(generation_id), error=type(error.__cause__).__name__)

    async def settle(self, settlement: Settlement) -> Credits | None:
        async with self._statements.connection() as connection:
            return await _settle(connection, settlement)

    async def reap(self, now: datetime, limit: int, verdict: Callable[[Abandoned], Settlement]) -> int:
        async with self._statements.connection() as connection, connection.transaction():
            expired = await connection.fetch(_EXPIRED, now, limit)
            for row in expired:
                pricing = Pricing(row["unit_tokens"], Credits(row["input_credits"]), Credits(row["output_credits"]))
                usage = Usage(row["input_tokens"], row["output_tokens"])
                await _settle(connection, verdict(Abandoned(row["id"], usage, pricing)))
        return len(expired)


async def _settle(connection: Connection, settlement: Settlement) -> Credits | None:
    balance = await connection.fetchval(
        _SETTLE,
        settlement.generation_id,
        settlement.entry_id,
        settlement.status.value,
        settlement.usage.input_tokens,
        settlement.usage.output_tokens,
        settlement.usage_source.value,
        settlement.cost.micros,
        settlement.output and settlement.output.replace("\x00", "\ufffd"),  # text holds no NUL
        settlement.error_code,
        settlement.is_refund,
        settlement.finished_at,
        settlement.usage.cached_input_tokens,
        settlement.usage.cache_write_tokens,
        settlement.usage.reasoning_tokens,
        _ATTEMPTS.encode(settlement.attempts).decode() if settlement.attempts else None,
    )
    return None if balance is None else Credits(balance)
