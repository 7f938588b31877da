from datetime import UTC, datetime
from typing import Annotated

from litestar.params import QueryParameter

from application.patterns import INSTANT
from application.ports.persistence import PageRequest

Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Page size (default 50, at most 200).")]
Cursor = Annotated[
    str | None,
    QueryParameter(
        max_length=512,
        description="`next_cursor` of the previous page; a cursor the server did not issue is 422 `validation_error`.",
    ),
]


_BOUND = "ISO 8601 date or date-time (`2026-11-01`, `2026-11-01T10:00:00.5+02:00`), UTC if naive"
Since = Annotated[str | None, QueryParameter(name="from", max_length=40, pattern=INSTANT, description=_BOUND)]
Until = Annotated[
    str | None,
    QueryParameter(
        name="to",
        max_length=40,
        pattern=INSTANT,
        description=f"{_BOUND}, exclusive; after `from` (else 422 `validation_error`)",
    ),
]


def page_request(limit: Limit = 50, cursor: Cursor = None) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


def instant(value: str | None) -> datetime | None:
    """A bound of the query (its pattern already checked); a naive one is UTC. One that falls before year 1 or
    after 9999 once read in UTC lies outside every record, so the representable extreme bounds the same rows."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return (datetime.min if parsed.year == 1 else datetime.max).replace(tzinfo=UTC)
