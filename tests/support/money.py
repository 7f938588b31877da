"""Direct database set-up and checks for money tests."""

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def funded_user(engine: AsyncEngine, micros: int) -> uuid.UUID:
    """A user whose wallet holds `micros`, written as one admin adjustment so the ledger identity holds."""
    user_id = uuid.uuid4()
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO users (id, username, password_hash) VALUES (:id, :name, 'x')"),
            {"id": user_id, "name": f"u{user_id.hex[:12]}"},
        )
        await connection.execute(
            text("INSERT INTO wallets (user_id, balance) VALUES (:id, :balance)"), {"id": user_id, "balance": micros}
        )
        if micros:
            await connection.execute(
                text(
                    "INSERT INTO ledger_entries (id, user_id, kind, amount, balance_after) "
                    "VALUES (:entry, :id, 'admin_adjustment', :amount, :amount)"
                ),
                {"entry": uuid.uuid4(), "id": user_id, "amount": micros},
            )
    return user_id


async def key_row(engine: AsyncEngine, user_id: uuid.UUID, credit_limit: int | None = None) -> str:
    """An active API key of `user_id` on the TypeID `billing-type`, written directly."""
    api_key = f"key_{uuid.uuid4().hex}"
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO type_profiles (typeid, scale, system, user_template, model, llm) "
                "VALUES (:t, 10, 's', '{reference} {text}', 'dr14', 'simulator') ON CONFLICT DO NOTHING"
            ),
            {"t": "billing-type"},
        )
        await connection.execute(
            text(
                "INSERT INTO api_keys (api_key, user_id, typeid, expires_at, credit_limit, secret_ciphertext) "
                "VALUES (:k, :u, 'billing-type', now() + interval '1 day', :limit, '\\x00')"
            ),
            {"k": api_key, "u": user_id, "limit": credit_limit},
        )
    return api_key


async def balance_of(engine: AsyncEngine, user_id: uuid.UUID) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT balance FROM wallets WHERE user_id = :id"), {"id": user_id}))


async def generation_violations(engine: AsyncEngine) -> list[str]:
    """Every finished generation is charged exactly its cost, with at most one ledger row per phase."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                """
                SELECT g.id, g.status, g.cost, COALESCE(-SUM(l.amount), 0) AS charged, COUNT(l.id) AS entries,
                       COUNT(DISTINCT l.phase) AS phases
                FROM generations g LEFT JOIN ledger_entries l ON l.generation_id = g.id
                GROUP BY g.id
                HAVING g.status <> 'running'
                   AND (COALESCE(-SUM(l.amount), 0) <> g.cost OR COUNT(l.id) <> COUNT(DISTINCT l.phase))
                """
            )
        )
        return [f"generation {r.id} ({r.status}): cost {r.cost}, charged {r.charged}, rows {r.entries}" for r in rows]


async def balances_by_username(engine: AsyncEngine, prefix: str) -> dict[str, int]:
    """The balance of each user whose name starts with `prefix` (one script's users), by the rest of the name."""
    async with engine.connect() as connection:
        wallets = await connection.execute(
            text(
                "SELECT u.username, w.balance FROM wallets w JOIN users u ON u.id = w.user_id WHERE u.username LIKE :p"
            ),
            {"p": f"{prefix}%"},
        )
        return {row.username.removeprefix(prefix): row.balance for row in wallets}
