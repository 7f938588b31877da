"""The deployments of the catalog and the health this process sees of each."""

from datetime import datetime
from typing import Any, ClassVar

import msgspec

from application.generations.routing import DeploymentHealth
from application.ports.catalog import Catalog
from application.ports.persistence import PageRequest
from domain.routing import BreakerState

PAGE_SIZE = 200


class DeploymentHealthView(msgspec.Struct, frozen=True, kw_only=True):
    """`deployment` is `provider/upstream_model` (its identity for health: shared by the models it serves);
    `state` is its circuit breaker in the process that answered (`closed`, `open`: skipped until `open_until`,
    `half_open`: the next request probes it), after `consecutive_failures` failures in a row."""

    model: str
    deployment: str
    provider: str
    upstream_model: str
    priority: int
    weight: int
    state: BreakerState
    consecutive_failures: int
    open_until: datetime | None

    example: ClassVar[dict[str, Any]] = {
        "model": "dr14",
        "deployment": "openai/gpt-4o-mini",
        "provider": "openai",
        "upstream_model": "gpt-4o-mini",
        "priority": 0,
        "weight": 1,
        "state": "open",
        "consecutive_failures": 3,
        "open_until": "2026-12-01T14:30:00Z",
    }


class DeploymentHealthList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DeploymentHealthView]

    example: ClassVar[dict[str, Any]] = {"items": [DeploymentHealthView.example]}


class ListDeployments:
    """Every deployment of every catalog model, by model, with its circuit breaker as this process sees it
    (breakers are per process: behind a load balancer, each instance answers for itself)."""

    def __init__(self, catalog: Catalog, health: DeploymentHealth) -> None:
        self._catalog = catalog
        self._health = health

    async def __call__(self) -> DeploymentHealthList:
        states = self._health.states()
        items: list[DeploymentHealthView] = []
        cursor: str | None = None
        while True:
            page = await self._catalog.list(PageRequest(limit=PAGE_SIZE, cursor=cursor), enabled_only=False)
            for model in page.items:
                for d in model.deployments:
                    state = states.get(d.key)
                    items.append(
                        DeploymentHealthView(
                            model=model.id,
                            deployment=d.key,
                            provider=d.provider,
                            upstream_model=d.upstream_model,
                            priority=d.priority,
                            weight=d.weight,
                            state=BreakerState.CLOSED if state is None else state.state,
                            consecutive_failures=0 if state is None else state.consecutive_failures,
                            open_until=None if state is None else state.open_until,
                        )
                    )
            if (cursor := page.next_cursor) is None:
                return DeploymentHealthList(items=items)
