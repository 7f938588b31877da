from uuid import UUID

from sqlalchemy import Numeric, RowMapping, cast, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.cursors import keyset_page
from adapters.postgres.tables import ledger_entries, wallets
from application.ports.persistence import Page, PageRequest, Posting, WalletLedger
from domain.credits import Credits
from domain.errors import NotFound
from domain.wallet import MAX_BALANCE, BalanceOutOfRange, EntryKind, LedgerEntry

_ENTRY_COLUMNS = (
    ledger_entries.c.id,
    ledger_entries.c.user_id,
    ledger_entries.c.kind,
    ledger_entries.c.amount,
    ledger_entries.c.balance_after,
    ledger_entries.c.created_at,
    ledger_entries.c.generation_id,
    ledger_entries.c.api_key,
    ledger_entries.c.reason,
)


def _entry(m: RowMapping) -> LedgerEntry:
    return LedgerEntry(
        id=m["id"],
        user_id=m["user_id"],
        kind=EntryKind(m["kind"]),
        amount=Credits(m["amount"]),
        balance_after=Credits(m["balance_after"]),
        created_at=m["created_at"],
        generation_id=m["generation_id"],
        api_key=m["api_key"],
        reason=m["reason"],
    )


class PgWalletLedger(WalletLedger):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def post(self, posting: Posting) -> LedgerEntry:
        """One statement: the wallet update and its ledger row, with the balance the update produced. The bound
        is checked in numeric, where a sum past BIGINT does not overflow."""
        wallet = (
            update(wallets)
            .where(wallets.c.user_id == posting.user_id)
            .where(func.abs(cast(wallets.c.balance, Numeric) + posting.amount.micros) <= MAX_BALANCE.micros)
            .values(balance=wallets.c.balance + posting.amount.micros, updated_at=func.now())
            .returning(wallets.c.user_id, wallets.c.balance)
            .cte("w")
        )
        entry = (
            insert(ledger_entries)
            .from_select(
                ["id", "user_id", "kind", "amount", "balance_after", "reason", "actor_id", "generation_id", "api_key"],
                select(
                    literal(posting.entry_id),
                    wallet.c.user_id,
                    literal(posting.kind.value),
                    literal(posting.amount.micros),
                    wallet.c.balance,
                    literal(posting.reason),
                    literal(posting.actor_id),
                    literal(posting.generation_id),
                    literal(posting.api_key),
                ),
            )
            .returning(*_ENTRY_COLUMNS)
        )
        row = (await self._session.execute(entry)).one_or_none()
        if row is not None:
            return _entry(row._mapping)
        if await self._session.scalar(select(wallets.c.user_id).where(wallets.c.user_id == posting.user_id)) is None:
            raise NotFound("the user has no wallet")
        raise BalanceOutOfRange

    async def entries(self, user_id: UUID, page: PageRequest) -> Page[LedgerEntry]:
        return await keyset_page(
            self._session,
            select(ledger_entries.c.seq, *_ENTRY_COLUMNS).where(ledger_entries.c.user_id == user_id),
            page,
            keys=[ledger_entries.c.seq],
            item=_entry,
            descending=True,
        )
