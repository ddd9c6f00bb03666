"""Liveness, readiness, metrics and the partner's ping. None touches the request session, so
probes stay cheap and work while the connection pool is exhausted elsewhere."""

from pydantic import BaseModel
from sqlalchemy import text
from starlette.responses import Response

from cardcore.kit import metrics
from cardcore.kit.app_state import SessionmakerDep
from cardcore.kit.envelope import One
from cardcore.kit.errors import CardcoreError, error_responses
from cardcore.kit.logging import get_logger
from cardcore.kit.routing import router
from cardcore.webhooks.service import oldest_undelivered_age

routes = router(tags=["health"])
log = get_logger(__name__)


class Status(BaseModel):
    status: str


@routes.get("/v1/ping", summary="Is the service up?")
async def ping() -> One[Status]:
    return One(data=Status(status="Service is up and running!"))


@routes.get("/health/live", summary="Liveness probe", include_in_schema=False)
async def live() -> One[Status]:
    return One(data=Status(status="live"))


@routes.get(
    "/health/ready",
    summary="Readiness probe: can this process reach its database?",
    responses=error_responses("SERVICE_UNAVAILABLE"),
)
async def ready(sessionmaker: SessionmakerDep) -> One[Status]:
    try:
        async with sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("readiness_failed", error=type(exc).__name__)
        raise CardcoreError("SERVICE_UNAVAILABLE", "The database is not reachable.") from exc
    return One(data=Status(status="ready"))


@routes.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def prometheus_metrics(sessionmaker: SessionmakerDep) -> Response:
    try:
        async with sessionmaker() as session:
            metrics.WEBHOOK_OLDEST_UNDELIVERED.set(await oldest_undelivered_age(session))
    except Exception as exc:
        # Metrics must still answer when the database does not; the gauge keeps its last value.
        log.warning("metrics_database_unreachable", error=type(exc).__name__)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
