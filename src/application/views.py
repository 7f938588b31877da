"""What use cases return: msgspec Structs that are also the API's response bodies. Credits are decimal strings."""

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

import msgspec

from application import examples
from application.patterns import CREDITS
from application.ports.persistence import Account, Page
from domain.user import Role
from domain.wallet import EntryKind, LedgerEntry

CreditsText = Annotated[
    str,
    msgspec.Meta(
        pattern=CREDITS,
        description="Credits as a decimal string with at most 6 fractional digits.",
        examples=["12.5"],
    ),
]


class UserView(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    username: str
    email: str | None
    role: Role
    balance: CreditsText
    is_active: bool
    created_at: datetime

    example: ClassVar[dict[str, Any]] = {
        "id": examples.USER_ID,
        "username": examples.USERNAME,
        "email": "ada@example.com",
        "role": "client",
        "balance": "25",
        "is_active": True,
        "created_at": examples.CREATED_AT,
    }

    @classmethod
    def of(cls, account: Account) -> "UserView":
        user = account.user
        return cls(
            id=user.id,
            username=user.username,
            email=user.email,
            role=user.role,
            balance=str(account.balance),
            is_active=user.is_active,
            created_at=user.created_at,
        )


class UserPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[UserView]
    next_cursor: str | None

    example: ClassVar[dict[str, Any]] = {"items": [UserView.example], "next_cursor": None}

    @classmethod
    def of(cls, page: Page[Account]) -> "UserPage":
        return cls(items=[UserView.of(account) for account in page.items], next_cursor=page.next_cursor)


class TransactionView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: UUID
    kind: EntryKind
    amount: CreditsText
    balance_after: CreditsText
    created_at: datetime
    generation_id: UUID | None = None
    api_key: str | None = None
    reason: str | None = None

    example: ClassVar[dict[str, Any]] = {
        "id": examples.TRANSACTION_ID,
        "kind": "admin_adjustment",
        "amount": "25",
        "balance_after": "25",
        "created_at": examples.CREATED_AT,
        "reason": "Pilot credits for the essay-grading trial",
    }

    @classmethod
    def of(cls, entry: LedgerEntry) -> "TransactionView":
        return cls(
            id=entry.id,
            kind=entry.kind,
            amount=str(entry.amount),
            balance_after=str(entry.balance_after),
            created_at=entry.created_at,
            generation_id=entry.generation_id,
            api_key=entry.api_key,
            reason=entry.reason,
        )


class TransactionPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TransactionView]
    next_cursor: str | None

    example: ClassVar[dict[str, Any]] = {"items": [TransactionView.example], "next_cursor": None}

    @classmethod
    def of(cls, page: Page[LedgerEntry]) -> "TransactionPage":
        return cls(items=[TransactionView.of(entry) for entry in page.items], next_cursor=page.next_cursor)


class BalanceView(msgspec.Struct, frozen=True, kw_only=True):
    balance: CreditsText
    currency: Literal["credits"] = "credits"

    example: ClassVar[dict[str, Any]] = {"balance": "12.2", "currency": "credits"}


class TokenPair(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int

    example: ClassVar[dict[str, Any]] = {
        "access_token": examples.ACCESS_TOKEN,
        "refresh_token": examples.REFRESH_TOKEN,
        "token_type": "Bearer",
        "expires_in": 900,
    }
