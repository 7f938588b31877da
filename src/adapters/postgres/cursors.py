"""Opaque keyset cursors: the sort key of the last row of a page, as URL-safe base64 JSON.

A cursor comes back from the client, so decoding accepts only values PostgreSQL can bind: a forged cursor is a
validation error, never a driver error."""

import base64
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain.errors import InvalidInput

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
