from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.credits import Credits


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    """Operator-set rules for accounts (from settings); 0 turns a limit off."""

    signup_credits: Credits
    login_failure_limit: int
    registrations_per_hour: int
    login_window: timedelta = timedelta(minutes=15)
    registration_window: timedelta = timedelta(hours=1)
    refresh_token_ttl: timedelta = timedelta(days=30)

    @property
    def address_failure_limit(self) -> int:
        """One address may fail for several usernames (a shared NAT), but not without bound."""
        return 3 * self.login_failure_limit


def window_start(now: datetime, window: timedelta) -> datetime:
    seconds = window.total_seconds()
    return datetime.fromtimestamp(now.timestamp() // seconds * seconds, tz=UTC)


def seconds_until_next_window(now: datetime, window: timedelta) -> int:
    return int((window_start(now, window) + window - now).total_seconds()) + 1
