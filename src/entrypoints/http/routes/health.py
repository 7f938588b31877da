from typing import Any, ClassVar, Literal

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Response, get
from litestar.openapi import ResponseSpec

from application.health.check_readiness import CheckReadiness, Readiness


class Liveness(msgspec.Struct, frozen=True):
    status: Literal["ok"] = "ok"

    example: ClassVar[dict[str, Any]] = {"status": "ok"}


@get("/health/live", tags=["health"], summary="The process serves requests", sync_to_thread=False)
def live() -> Liveness:
    return Liveness()


@get(
    "/health/ready",
    tags=["health"],
    summary="Ready when PostgreSQL answers within 1.5 s (else 503)",
    responses={
        503: ResponseSpec(Readiness, description="Not ready: the database does not answer", generate_examples=False)
    },
)
@inject
async def ready(check: FromDishka[CheckReadiness]) -> Response[Readiness]:
    readiness = await check()
    return Response(readiness, status_code=200 if readiness.ready else 503)
