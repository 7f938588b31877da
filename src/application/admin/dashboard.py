from dataclasses import dataclass
from datetime import date, timedelta

from application.generations.open_runs import LiveRuns
from application.ports.clock import Clock
from application.ports.generations import DailyActivity, GenerationRecords
from domain.credits import Credits

DAYS = 30
ERROR_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Total:
    """One bar of the dashboard: a day (ISO date) or a model."""

    label: str
    generations: int
    credits: Credits


@dataclass(frozen=True, slots=True)
class Dashboard:
    days: list[Total]
    """The last 30 UTC days, oldest first, today included; a day without generations is there with zeros."""
    models: list[Total]
    """Over the same days, largest spend first."""
    failed_last_hour: int
    running: int
    """Generations running now, on every instance."""
    open_streams_here: int
    """The streams this instance holds open now."""


class GetDashboard:
    """What the gateway did over the last 30 days, per day and per model, and what it is doing now."""

    def __init__(self, records: GenerationRecords, live_runs: LiveRuns, clock: Clock) -> None:
        self._records = records
        self._live_runs = live_runs
        self._clock = clock

    async def __call__(self) -> Dashboard:
        now = self._clock.now()
        first = now.date() - timedelta(days=DAYS - 1)
        since = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS - 1)
        activity = await self._records.daily_activity(since, now + timedelta(microseconds=1))
        recent = await self._records.daily_activity(now - ERROR_WINDOW, now + timedelta(microseconds=1))
        return Dashboard(
            days=_by_day(activity, first),
            models=sorted(_by_model(activity), key=lambda total: (-total.credits.micros, total.label)),
            failed_last_hour=sum(row.failed for row in recent),
            running=sum(row.running for row in activity),
            open_streams_here=len(self._live_runs),
        )


def _by_day(activity: list[DailyActivity], first: date) -> list[Total]:
    days = [first + timedelta(days=offset) for offset in range(DAYS)]
    return [_total(day.isoformat(), [row for row in activity if row.day == day]) for day in days]


def _by_model(activity: list[DailyActivity]) -> list[Total]:
    models = sorted({row.model for row in activity})
    return [_total(model, [row for row in activity if row.model == model]) for model in models]


def _total(label: str, rows: list[DailyActivity]) -> Total:
    return Total(label, sum(row.generations for row in rows), sum((row.credits for row in rows), Credits.zero()))
