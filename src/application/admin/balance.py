import hashlib
from typing import Annotated, Any, ClassVar
from uuid import UUID

import msgspec

from application.patterns import ADJUSTMENT, STORABLE_TEXT
from application.ports.clock import IdGenerator
from application.ports.persistence import (
    ClaimOutcome,
    IdempotencyKeyReused,
    IdempotencyStore,
    Posting,
    UnitOfWork,
    WalletLedger,
)
from application.ports.security import IdentityProvider
from application.views import CreditsText, TransactionView
from domain.credits import Credits
from domain.wallet import EntryKind, require_non_zero


class BalanceAdjustment(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    amount: Annotated[str, msgspec.Meta(pattern=ADJUSTMENT, description='Signed credits, not zero: `"25"`, `"-0.5"`.')]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=STORABLE_TEXT)]

    example: ClassVar[dict[str, Any]] = {"amount": "25", "reason": "Pilot credits for the essay-grading trial"}


class AdjustmentResult(msgspec.Struct, frozen=True, kw_only=True):
    balance: CreditsText
    transaction: TransactionView

    example: ClassVar[dict[str, Any]] = {"balance": "25", "transaction": TransactionView.example}


class AdjustBalance:
    """Credit or debit a wallet by a signed amount, with a reason, as one ledger row. With an Idempotency-Key
    the same key and body return the first response (one row, however many retries race); another body
    with that key is refused with `idempotency_key_reused`."""

    def __init__(
        self,
        identity: IdentityProvider,
        ledger: WalletLedger,
        idempotency: IdempotencyStore,
        uow: UnitOfWork,
        ids: IdGenerator,
    ) -> None:
        self._identity = identity
        self._ledger = ledger
        self._idempotency = idempotency
        self._uow = uow
        self._ids = ids

    async def __call__(
        self, user_id: UUID, adjustment: BalanceAdjustment, *, idempotency_key: str | None
    ) -> AdjustmentResult:
        admin = await self._identity.current()
        amount = require_non_zero(Credits.parse(adjustment.amount, field="amount"))
        scope = f"admin-balance:{admin.user_id}"
        if idempotency_key is not None:
            claim = await self._idempotency.claim(scope, idempotency_key, _fingerprint(user_id, amount, adjustment))
            if claim.outcome is ClaimOutcome.REPLAY and claim.response is not None:
                return msgspec.json.decode(claim.response, type=AdjustmentResult)
            if claim.outcome is not ClaimOutcome.CLAIMED:
                raise IdempotencyKeyReused
        entry = await self._ledger.post(
            Posting(
                entry_id=self._ids.new_id(),
                user_id=user_id,
                kind=EntryKind.ADMIN_ADJUSTMENT,
                amount=amount,
                reason=adjustment.reason,
                actor_id=admin.user_id,
            )
        )
        result = AdjustmentResult(balance=str(entry.balance_after), transaction=TransactionView.of(entry))
        if idempotency_key is not None:
            await self._idempotency.save_response(scope, idempotency_key, msgspec.json.encode(result))
        await self._uow.commit()
        return result


def _fingerprint(user_id: UUID, amount: Credits, adjustment: BalanceAdjustment) -> str:
    canonical = msgspec.json.encode([str(user_id), str(amount), adjustment.reason])
    return hashlib.sha256(canonical).hexdigest()
