"""The event outbox, as partners read it."""

from typing import Annotated

from fastapi import Path, Query, Security

from cardcore.events.repository import EventRepository
from cardcore.events.schemas import EventOut
from cardcore.kit.access import partner_or_admin
from cardcore.kit.envelope import Many, One
from cardcore.kit.errors import error_responses
from cardcore.kit.pagination import Pagination
from cardcore.kit.principals import Principal
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession

# The partner, or ops staff whose role the matrix allows ("events.read").
EventReader = Annotated[Principal, Security(partner_or_admin("events.read"))]

routes = router(
    tags=["events"],
    encryption="optional",
)


@routes.get(
    "/v1/events",
    summary="List events",
    description="Everything that happened in the program, newest first.",
    responses=error_responses("VALIDATION_ERROR"),
)
async def list_events(
    principal: EventReader,
    session: DbSession,
    page: Pagination,
    type: Annotated[
        str | None,
        Query(max_length=100, description="Only events of this type, e.g. `api_key.created`."),
    ] = None,
) -> Many[EventOut]:
    repository = EventRepository(session, principal.tenant_id)
    events, meta = await repository.page(repository.of_type(type), page)
    return Many(data=[EventOut.model_validate(event) for event in events], meta=meta)


@routes.get("/v1/events/{event_id}", summary="Get an event", responses=error_responses("NOT_FOUND"))
async def get_event(
    event_id: Annotated[str, Path(description="An event id (`evt_…`).")],
    principal: EventReader,
    session: DbSession,
) -> One[EventOut]:
    event = await EventRepository(session, principal.tenant_id).get_or_404(event_id)
    return One(data=EventOut.model_validate(event))
