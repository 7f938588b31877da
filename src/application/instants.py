"""Instants the API is given: with an explicit offset (a naive one has no single meaning), within what UTC and
PostgreSQL represent (`0001-01-01T00:00:00+01:00` is year 0 in UTC)."""

from datetime import UTC, datetime
from typing import Annotated

import msgspec

from domain.errors import InvalidInput

AwareDatetime = Annotated[
    datetime, msgspec.Meta(tz=True, description="RFC 3339 date-time with an offset (`Z` or `+02:00`).")
]


def in_utc(value: datetime, field: str) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("the date-time is out of range once read in UTC", field=field) from None


def require_window(since: datetime | None, until: datetime | None) -> None:
    """A report window `[from, to)` that holds at least one instant."""
    if since is not None and until is not None and since >= until:
        raise InvalidInput("`from` must be before `to`", field="from")
