"""The ledger identity (RELIABILITY M1): every wallet equals the sum of its entries, and every entry's
`balance_after` is the running sum of that wallet's entries up to it; and every wallet's reserve is the sum of
the reserves its running generations hold."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_WALLETS = text(
    """
    SELECT w.user_id, w.balance, COALESCE(SUM(l.amount), 0) AS total
    FROM wallets w LEFT JOIN ledger_entries l ON l.user_id = w.user_id
    GROUP BY w.user_id, w.balance
    HAVING w.balance <> COALESCE(SUM(l.amount), 0)
    """
)
_RUNNING_SUMS = text(
    """
    SELECT seq, user_id, balance_after, running
    FROM (SELECT seq, user_id, balance_after, SUM(amount) OVER (PARTITION BY user_id ORDER BY seq) AS running
          FROM ledger_entries) AS entries
    WHERE balance_after <> running
    """
)
_RESERVES = text(
    """
    SELECT w.user_id, w.reserved_micros, COALESCE(SUM(g.wallet_reserved) FILTER (WHERE g.status = 'running'), 0)
           AS held
    FROM wallets w LEFT JOIN generations g ON g.user_id = w.user_id
    GROUP BY w.user_id, w.reserved_micros
    HAVING w.reserved_micros <> COALESCE(SUM(g.wallet_reserved) FILTER (WHERE g.status = 'running'), 0)
    """
)


async def ledger_violations(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        wallets = (await connection.execute(_WALLETS)).all()
        entries = (await connection.execute(_RUNNING_SUMS)).all()
        reserves = (await connection.execute(_RESERVES)).all()
    return (
        [f"wallet {r.user_id}: balance {r.balance} != sum of entries {r.total}" for r in wallets]
        + [f"entry {r.seq} of {r.user_id}: balance_after {r.balance_after} != running sum {r.running}" for r in entries]
        + [
            f"wallet {r.user_id}: reserved {r.reserved_micros} != held by running generations {r.held}"
            for r in reserves
        ]
    )
