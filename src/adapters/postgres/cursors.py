"""Opaque keyset cursors: the sort key of the last row of a page, as URL-safe base64 JSON."""

import base64
import binascii
from datetime import datetime
from uuid import UUID

import msgspec

from domain.errors import InvalidInput

CursorValue = int | str | UUID | datetime


def encode_cursor(*values: CursorValue) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(values)).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type[CursorValue]) -> tuple[CursorValue, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = msgspec.json.decode(raw, type=tuple[*types])  # type: ignore[valid-type]
    except (binascii.Error, ValueError, msgspec.ValidationError, msgspec.DecodeError):
        raise InvalidInput("invalid cursor", field="cursor") from None
    return tuple(values)
