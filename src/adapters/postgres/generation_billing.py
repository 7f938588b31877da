"""The generation money path. Every step is one statement run in autocommit mode: atomic, one round trip.

A generation starts only while the wallet's `available` (balance less the output reserves of the user's
running generations, `reserved_micros`) is positive and covers its pre-charge; it adds its own reserve, and its
settlement (reaper and refund included) releases exactly the `wallet_reserved` it recorded."""

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import structlog
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.postgres.engine import AutocommitEngine
from application.ports.billing import Abandoned, GenerationBilling, GenerationStart, Settlement
from domain.credits import Credits
from domain.errors import InsufficientBalance, KeyCreditLimit
from domain.pricing import Pricing, Usage

log = structlog.get_logger(__name__)

_START = text("""
WITH funded AS (
    SELECT user_id, balance - reserved_micros AS available FROM wallets
    WHERE user_id = :user_id
    FOR UPDATE
), k AS (
    UPDATE api_keys SET spent_micros = spent_micros + :key_reserve
    WHERE api_key = CAST(:api_key AS text)
      AND (credit_limit IS NULL OR spent_micros < credit_limit)
      AND EXISTS (SELECT 1 FROM funded WHERE available > 0 AND available >= :precharge)
    RETURNING api_key
), w AS (
    UPDATE wallets SET balance = balance - :precharge, reserved_micros = reserved_micros + :reserve,
                       updated_at = now()
    WHERE user_id = :user_id AND balance - reserved_micros > 0 AND balance - reserved_micros >= :precharge
      AND (CAST(:api_key AS text) IS NULL OR EXISTS (SELECT 1 FROM k))
    RETURNING user_id, balance
), g AS (
    INSERT INTO generations (id, user_id, kind, model, api_key, status, unit_tokens, input_credits,
                             output_credits, input_tokens, precharged, cost, key_reserved, wallet_reserved,
                             lease_expires_at, created_at)
    SELECT :generation_id, user_id, :kind, :model, :api_key, 'running', :unit_tokens, :input_credits,
           :output_credits, :input_tokens, :precharge, :precharge,
           CASE WHEN CAST(:api_key AS text) IS NULL THEN 0 ELSE CAST(:key_reserve AS bigint) END, :reserve,
           :lease_expires_at, :created_at
    FROM w
    RETURNING id
), l AS (
    INSERT INTO ledger_entries (id, user_id, kind, phase, amount, balance_after, generation_id, api_key)
    SELECT :entry_id, w.user_id, :kind, 'precharge', -CAST(:precharge AS bigint), w.balance, g.id, :api_key
    FROM w, g
    WHERE CAST(:precharge AS bigint) > 0
)
SELECT (SELECT balance FROM w) AS balance,
       EXISTS (SELECT 1 FROM funded WHERE available > 0 AND available >= :precharge) AS funded
""")

_CHECKPOINT = text("""
UPDATE generations
SET output_tokens = :output_tokens, lease_expires_at = :expires
WHERE id = :generation_id AND status = 'running'
""")

_SETTLE = text("""
WITH g AS (
    UPDATE generations
    SET status = :status, input_tokens = :input_tokens, output_tokens = :output_tokens,
        usage_source = :usage_source, cost = :cost, output = :output, error_code = :error_code,
        finished_at = :finished_at
    WHERE id = :generation_id AND status = 'running'
    RETURNING id, user_id, kind, api_key, precharged, key_reserved, wallet_reserved
), w AS (
    UPDATE wallets SET balance = wallets.balance - (CAST(:cost AS bigint) - g.precharged),
                       reserved_micros = wallets.reserved_micros - g.wallet_reserved, updated_at = now()
    FROM g
    WHERE wallets.user_id = g.user_id
    RETURNING wallets.user_id, wallets.balance, g.precharged, g.key_reserved, g.kind, g.api_key,
              g.id AS generation_id
), k AS (
    UPDATE api_keys SET spent_micros = api_keys.spent_micros + (CAST(:cost AS bigint) - w.key_reserved)
    FROM w
    WHERE api_keys.api_key = w.api_key AND w.key_reserved <> CAST(:cost AS bigint)
), l AS (
    INSERT INTO ledger_entries (id, user_id, kind, phase, amount, balance_after, generation_id, api_key)
    SELECT :entry_id, user_id,
           CASE WHEN :refund THEN 'refund' ELSE kind END,
           CASE WHEN :refund THEN 'refund' ELSE 'settle' END,
           precharged - CAST(:cost AS bigint), balance, generation_id, api_key
    FROM w
    WHERE precharged <> CAST(:cost AS bigint)
)
SELECT balance FROM w
""")

_EXPIRED = text("""
SELECT id, input_tokens, output_tokens, unit_tokens, input_credits, output_credits
FROM generations
WHERE status = 'running' AND lease_expires_at < :now
ORDER BY lease_expires_at
LIMIT :limit
FOR UPDATE SKIP LOCKED
""")


class PgGenerationBilling(GenerationBilling):
    def __init__(self, engine: AsyncEngine, statements: AutocommitEngine) -> None:
        self._engine = statements
        self._transactional = engine

    async def start(self, start: GenerationStart) -> Credits:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    _START,
                    {
                        "generation_id": start.generation_id,
                        "entry_id": start.entry_id,
                        "user_id": start.user_id,
                        "kind": start.kind.value,
                        "model": start.model_id,
                        "api_key": start.api_key,
                        "unit_tokens": start.pricing.unit_tokens,
                        "input_credits": start.pricing.input_credits.micros,
                        "output_credits": start.pricing.output_credits.micros,
                        "input_tokens": start.input_tokens,
                        "precharge": start.precharge.micros,
                        "key_reserve": (start.key_reserve or start.precharge).micros,
                        "reserve": start.reserve.micros,
                        "lease_expires_at": start.lease_expires_at,
                        "created_at": start.created_at,
                    },
                )
            ).one()
        if row.balance is not None:
            return Credits(row.balance)
        if start.api_key is not None and row.funded:
            raise KeyCreditLimit
        raise InsufficientBalance

    async def checkpoint(self, generation_id: UUID, output_tokens: int, lease_expires_at: datetime) -> None:
        try:
            async with self._engine.connect() as connection:
                values = {"generation_id": generation_id, "output_tokens": output_tokens, "expires": lease_expires_at}
                await connection.execute(_CHECKPOINT, values)
        except (SQLAlchemyError, OSError) as error:
            log.warning("checkpoint_failed", generation_id=str(generation_id), error=type(error).__name__)

    async def settle(self, settlement: Settlement) -> Credits | None:
        async with self._engine.connect() as connection:
            return await _settle(connection, settlement)

    async def reap(self, now: datetime, limit: int, verdict: Callable[[Abandoned], Settlement]) -> int:
        async with self._transactional.begin() as connection:
            expired = (await connection.execute(_EXPIRED, {"now": now, "limit": limit})).all()
            for row in expired:
                pricing = Pricing(row.unit_tokens, Credits(row.input_credits), Credits(row.output_credits))
                abandoned = Abandoned(row.id, Usage(row.input_tokens, row.output_tokens), pricing)
                await _settle(connection, verdict(abandoned))
        return len(expired)


async def _settle(connection: AsyncConnection, settlement: Settlement) -> Credits | None:
    balance = await connection.scalar(
        _SETTLE,
        {
            "generation_id": settlement.generation_id,
            "entry_id": settlement.entry_id,
            "status": settlement.status.value,
            "input_tokens": settlement.usage.input_tokens,
            "output_tokens": settlement.usage.output_tokens,
            "usage_source": settlement.usage_source.value,
            "cost": settlement.cost.micros,
            "output": settlement.output and settlement.output.replace("\x00", "\ufffd"),  # text holds no NUL
            "error_code": settlement.error_code,
            "refund": settlement.is_refund,
            "finished_at": settlement.finished_at,
        },
    )
    return None if balance is None else Credits(balance)
