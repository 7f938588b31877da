from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Date, RowMapping, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.cursors import keyset_page
from adapters.postgres.tables import api_keys, generations
from application.ports.generations import (
    DailyActivity,
    GenerationFilter,
    GenerationRecords,
    KeyActivity,
    UsageGrouping,
    UsageTotal,
)
from application.ports.persistence import Page, PageRequest
from domain.credits import Credits
from domain.generation import Generation, GenerationKind, GenerationStatus
from domain.pricing import Usage
from domain.routing import Attempt

_COLUMNS = (
    generations.c.id,
    generations.c.user_id,
    generations.c.kind,
    generations.c.model,
    generations.c.status,
    generations.c.input_tokens,
    generations.c.output_tokens,
    generations.c.cached_input_tokens,
    generations.c.cache_write_tokens,
    generations.c.reasoning_tokens,
    generations.c.cost,
    generations.c.created_at,
    generations.c.finished_at,
    generations.c.output,
    generations.c.api_key,
    generations.c.error_code,
    generations.c.attempts,
)
_USAGE_COUNTS = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens")
_GROUP_COLUMNS = {
    UsageGrouping.USER: generations.c.user_id,
    UsageGrouping.MODEL: generations.c.model,
    UsageGrouping.KEY: generations.c.api_key,
}


def _generation(m: RowMapping) -> Generation:
    return Generation(
        id=m["id"],
        user_id=m["user_id"],
        kind=GenerationKind(m["kind"]),
        model=m["model"],
        status=GenerationStatus(m["status"]),
        usage=Usage(*(m[name] for name in _USAGE_COUNTS)),
        cost=Credits(m["cost"]),
        created_at=m["created_at"],
        finished_at=m["finished_at"],
        output=m["output"],
        api_key=m["api_key"],
        error_code=m["error_code"],
        attempts=tuple(Attempt(**a) for a in m["attempts"] or ()),
    )


def _matching(where: GenerationFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.user_id is not None:
        conditions.append(generations.c.user_id == where.user_id)
    if where.model is not None:
        conditions.append(generations.c.model == where.model)
    if where.status is not None:
        conditions.append(generations.c.status == where.status.value)
    if where.api_key is not None:
        conditions.append(generations.c.api_key == where.api_key)
    if where.since is not None:
        conditions.append(generations.c.created_at >= where.since)
    if where.until is not None:
        conditions.append(generations.c.created_at < where.until)
    return conditions


class PgGenerationRecords(GenerationRecords):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, generation_id: UUID) -> Generation | None:
        row = (await self._session.execute(select(*_COLUMNS).where(generations.c.id == generation_id))).one_or_none()
        return None if row is None else _generation(row._mapping)

    async def of_user(self, user_id: UUID, page: PageRequest) -> Page[Generation]:
        return await keyset_page(
            self._session,
            select(*_COLUMNS).where(generations.c.user_id == user_id),
            page,
            keys=[generations.c.created_at, generations.c.id],
            item=_generation,
            descending=True,
        )

    async def search(self, where: GenerationFilter, page: PageRequest) -> Page[Generation]:
        return await keyset_page(
            self._session,
            select(*_COLUMNS).where(*_matching(where)),
            page,
            keys=[generations.c.created_at, generations.c.id],
            item=_generation,
            descending=True,
        )

    async def usage(self, group_by: UsageGrouping, since: datetime | None, until: datetime | None) -> list[UsageTotal]:
        return await self._totals(_GROUP_COLUMNS[group_by], since, until)

    async def key_usage(self, api_key: str, since: datetime | None, until: datetime | None) -> list[UsageTotal]:
        return await self._totals(generations.c.model, since, until, generations.c.api_key == api_key)

    async def last_use(self, api_key: str) -> datetime | None:
        last: datetime | None = await self._session.scalar(
            select(func.max(generations.c.created_at)).where(generations.c.api_key == api_key)
        )
        return last

    async def daily_activity(self, since: datetime, until: datetime) -> list[DailyActivity]:
        day = cast(func.timezone("UTC", generations.c.created_at), Date).label("day")
        query = (
            select(
                day,
                generations.c.model,
                func.count().label("generations"),
                func.count().filter(generations.c.status == GenerationStatus.FAILED.value).label("failed"),
                func.count().filter(generations.c.status == GenerationStatus.RUNNING.value).label("running"),
                func.coalesce(func.sum(generations.c.cost), 0).label("credits"),
            )
            .where(generations.c.created_at >= since, generations.c.created_at < until)
            .group_by(day, generations.c.model)
            .order_by(day, generations.c.model)
        )
        return [
            DailyActivity(row.day, row.model, row.generations, row.failed, row.running, Credits(int(row.credits)))
            for row in await self._session.execute(query)
        ]

    async def key_activity(self, since: datetime) -> list[KeyActivity]:
        recent = generations.c.created_at >= since
        last_used = func.max(generations.c.created_at)
        query = (
            select(
                api_keys.c.api_key,
                func.count(generations.c.id).filter(recent).label("requests"),
                func.coalesce(func.sum(generations.c.cost).filter(recent), 0).label("credits"),
                last_used.label("last_used_at"),
            )
            .select_from(api_keys.outerjoin(generations, generations.c.api_key == api_keys.c.api_key))
            .group_by(api_keys.c.api_key)
            .order_by(last_used.desc().nulls_last(), api_keys.c.api_key)
        )
        return [
            KeyActivity(row.api_key, row.requests, Credits(int(row.credits)), row.last_used_at)
            for row in await self._session.execute(query)
        ]

    async def _totals(
        self,
        key: ColumnElement[Any],
        since: datetime | None,
        until: datetime | None,
        *conditions: ColumnElement[bool],
    ) -> list[UsageTotal]:
        spent = func.sum(generations.c.cost)
        query = (
            select(
                key.label("key"),
                func.count().label("requests"),
                *(func.coalesce(func.sum(generations.c[name]), 0).label(name) for name in _USAGE_COUNTS),
                func.coalesce(spent, 0).label("credits"),
            )
            .where(*conditions)
            .group_by(key)
            .order_by(spent.desc(), key)
        )
        if since is not None:
            query = query.where(generations.c.created_at >= since)
        if until is not None:
            query = query.where(generations.c.created_at < until)
        return [
            UsageTotal(
                key=None if row.key is None else str(row.key),
                requests=row.requests,
                usage=Usage(*(int(row._mapping[name]) for name in _USAGE_COUNTS)),
                credits=Credits(int(row.credits)),
            )
            for row in (await self._session.execute(query)).all()
        ]
