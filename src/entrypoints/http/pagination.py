from datetime import UTC, datetime
from typing import Annotated

from litestar.params import Parameter, QueryParameter

from application.instants import in_utc
from application.ports.persistence import PageRequest
from domain.errors import InvalidInput

Limit = Annotated[int, Parameter(ge=1, le=200, description="Page size (default 50, at most 200).")]
Cursor = Annotated[str | None, Parameter(max_length=512, description="`next_cursor` of the previous page.")]


Since = Annotated[
    str | None, QueryParameter(name="from", max_length=40, description="ISO date or date-time, UTC if naive")
]
Until = Annotated[
    str | None, QueryParameter(name="to", max_length=40, description="ISO date or date-time, exclusive, UTC if naive")
]


def page_request(limit: Limit = 50, cursor: Cursor = None) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


def instant(value: str | None, field: str) -> datetime | None:
    """An ISO date or date-time from the query; a naive one is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput("an ISO 8601 date or date-time, e.g. 2026-11-01", field=field) from None
    return in_utc(parsed, field) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
