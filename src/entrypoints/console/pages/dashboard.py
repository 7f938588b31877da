"""The dashboard: what the gateway did over the last 30 days, per day and per model, and what it is doing now."""

from typing import Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import get
from litestar.response import Template
from litestar_htmx import HTMXRequest

from application.admin.dashboard import Dashboard, GetDashboard, Total
from entrypoints.console.charts import BarChart, bar_chart
from entrypoints.console.rendering import page


def _credits_chart(title: str, totals: list[Total]) -> BarChart:
    return bar_chart(title, [(t.label, t.credits.micros / 1_000_000, str(t.credits)) for t in totals], unit=" credits")


def _generations_chart(title: str, totals: list[Total]) -> BarChart:
    return bar_chart(title, [(t.label, float(t.generations), str(t.generations)) for t in totals], unit=" generations")


def charts(report: Dashboard) -> list[BarChart]:
    return [
        _credits_chart("Credits spent per day (UTC), last 30 days", report.days),
        _generations_chart("Generations per day (UTC), last 30 days", report.days),
        _credits_chart("Credits spent per model, last 30 days", report.models),
        _generations_chart("Generations per model, last 30 days", report.models),
    ]


@get("/")
@inject
async def dashboard(request: HTMXRequest, use_case: FromDishka[GetDashboard]) -> Template:
    report = await use_case()
    return page(request, "pages/dashboard.html", section="dashboard", report=report, charts=charts(report))


handlers: list[Any] = [dashboard]
