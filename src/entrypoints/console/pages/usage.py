"""Usage: credits and tokens per user, model or API key over a window of days, as `GET /api/v1/admin/usage`."""

from typing import Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import get
from litestar.response import Template
from litestar_htmx import HTMXRequest

from application.admin.usage import GetUsage, UsageReport
from application.ports.generations import UsageGrouping
from domain.errors import DomainError
from entrypoints.console.charts import BarChart, bar_chart
from entrypoints.console.forms import FieldErrors, FormInvalid, errors_of, parse
from entrypoints.console.pages.window import DayWindow
from entrypoints.console.rendering import form_page, page

FILTERS = ("group_by", "from", "to")
NO_KEY = "no key"


class UsageQuery(DayWindow, frozen=True, kw_only=True):
    group_by: UsageGrouping = UsageGrouping.USER


def credits_chart(report: UsageReport) -> BarChart:
    points = [(row.key or NO_KEY, float(row.credits), row.credits) for row in report.items]
    return bar_chart(f"Credits spent per {report.group_by.value}", points, unit=" credits")


@get("/usage")
@inject
async def usage(request: HTMXRequest, use_case: FromDishka[GetUsage]) -> Template:
    """The window comes as text and is checked here, so a bad day is shown beside its input, never a bare 400."""
    filters = {name: value.strip() for name in FILTERS if (value := request.query_params.get(name, ""))}
    errors: FieldErrors = {}
    report = None
    try:
        query = parse(filters, UsageQuery)
        report = await use_case(query.group_by, *query.bounds())
    except FormInvalid as invalid:
        errors = invalid.errors
    except DomainError as error:
        errors = errors_of(error)
    context: dict[str, Any] = {
        "section": "usage",
        "report": report,
        "chart": report and credits_chart(report),
        "filters": filters,
        "window": {name: value for name, value in filters.items() if name != "group_by"},
        "groupings": list(UsageGrouping),
        "no_key": NO_KEY,
    }
    if errors:
        return form_page(request, "pages/usage.html", errors, **context)
    return page(request, "pages/usage.html", errors={}, **context)


handlers: list[Any] = [usage]
