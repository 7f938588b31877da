"""Keyset pagination, and its opaque cursors: the sort key of the last row of a page, as URL-safe base64 JSON.

A cursor comes back from the client, so decoding accepts only values PostgreSQL can bind: a forged cursor is a
validation error, never a driver error."""

import base64
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from sqlalchemy import Column, RowMapping, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from application.ports.persistence import Page, PageRequest
from domain.errors import InvalidInput

T = TypeVar("T")

CursorValue = int | str | UUID | datetime

_BINDABLE: dict[type[CursorValue], Any] = {
    int: Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)],
    str: Annotated[str, msgspec.Meta(pattern="^[^\x00]*$")],
    UUID: UUID,
    datetime: Annotated[datetime, msgspec.Meta(tz=True)],
}


def encode_cursor(*values: CursorValue) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(values)).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type[CursorValue]) -> tuple[CursorValue, ...]:
    """The values `encode_cursor` was given, checked against `types`; anything else is `InvalidInput`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        items = msgspec.json.decode(raw, type=list[Any])
        return tuple(msgspec.convert(item, _BINDABLE[t]) for item, t in zip(items, types, strict=True))
    except (ValueError, msgspec.ValidationError, msgspec.DecodeError):
        raise InvalidInput("invalid cursor", field="cursor") from None


async def keyset_page(
    session: AsyncSession,
    query: Select[Any],
    page: PageRequest,
    *,
    keys: Sequence[Column[Any]],
    item: Callable[[RowMapping], T],
    descending: bool = False,
) -> Page[T]:
    """One page of `query` ordered by `keys` (together unique, all ascending or all descending), starting after the
    row the cursor names; its next cursor holds the keys of its last row, and is None on the last page."""
    query = query.order_by(*(key.desc() if descending else key for key in keys)).limit(page.limit + 1)
    if page.cursor is not None:
        after = tuple_(*decode_cursor(page.cursor, *(key.type.python_type for key in keys)))
        query = query.where(tuple_(*keys) < after if descending else tuple_(*keys) > after)
    rows = (await session.execute(query)).all()
    items = [item(row._mapping) for row in rows[: page.limit]]
    if len(rows) <= page.limit:
        return Page(items=items, next_cursor=None)
    last = rows[page.limit - 1]._mapping
    return Page(items=items, next_cursor=encode_cursor(*(last[key] for key in keys)))
