"""A window of whole days from two date inputs, `to` included, read in UTC."""

from datetime import UTC, date, datetime, time, timedelta

import msgspec


class DayWindow(msgspec.Struct, frozen=True, kw_only=True):
    since: date | None = msgspec.field(default=None, name="from")
    until: date | None = msgspec.field(default=None, name="to")

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """`[from 00:00, the day after `to` 00:00)`, the half-open window the use cases take."""
        since = None if self.since is None else datetime.combine(self.since, time(), UTC)
        until = None if self.until is None else datetime.combine(self.until + timedelta(days=1), time(), UTC)
        return since, until
