"""Physical card requests over HTTP: ask for a plastic with a virtual card's number; approve or
reject the request."""

from datetime import datetime
from typing import Annotated

from fastapi import Path, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards import physical_requests
from cardcore.cards.dependencies import CardServicer, CardServicesDep
from cardcore.cards.repository import PhysicalRequestRepository, load_card
from cardcore.cards.schemas import CardId, Decline, DeliveryAddress
from cardcore.cards.service import CardServices
from cardcore.kit.access import Partner
from cardcore.kit.envelope import One
from cardcore.kit.errors import error_responses
from cardcore.kit.principals import Principal
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession

routes = router(
    tags=["cards"],
    encryption="optional",
    responses=error_responses("NOT_FOUND"),
)


class PhysicalRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embossing_name: str = Field(max_length=26)
    delivery_address: DeliveryAddress


class PhysicalRequestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    card_id: str
    status: str = Field(description="PENDING, APPROVED or REJECTED.")
    embossing_name: str
    physical_card_id: str | None
    reject_reason: str | None
    created_at: datetime


PHYSICAL_CODES = (
    "CARD_REPLACED",
    "CARD_NUMBER_COMPROMISED",
    "INVALID_CARD_TYPE",
    "INVALID_CARD_TRANSITION",
)


@routes.post(
    "/v1/cards/{card_id}/physical-requests",
    summary="Ask for a physical card with the same number as this virtual one",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        *PHYSICAL_CODES, "FORM_FACTOR_NOT_ALLOWED", "EMBOSSING_NAME_NOT_ALLOWED"
    ),
)
async def request_physical(
    card_id: CardId, body: PhysicalRequestIn, principal: Partner, session: DbSession
) -> One[PhysicalRequestOut]:
    card = await load_card(session, principal, card_id, lock=True)
    found = await physical_requests.request_physical(
        session,
        card,
        embossing_name=body.embossing_name,
        delivery_address=body.delivery_address.model_dump(),
    )
    await session.refresh(found)
    return One(data=PhysicalRequestOut.model_validate(found))


async def _decide_physical(
    session: AsyncSession,
    principal: Principal,
    request_id: str,
    services: CardServices,
    approve: bool,
    reason: str | None,
) -> PhysicalRequestOut:
    found = await PhysicalRequestRepository(session, principal.tenant_id).get_or_404(
        request_id, for_update=True
    )
    await physical_requests.decide_physical(
        session, services, found, approve=approve, reason=reason, actor=principal.kind.value
    )
    return PhysicalRequestOut.model_validate(found)


@routes.post(
    "/v1/physical-requests/{request_id}/approve",
    summary="Approve: order the physical card",
    description="Only while the virtual card is still ACTIVE, not replaced, and its number was "
    "never reported lost, stolen or used in fraud.",
    responses=error_responses(*PHYSICAL_CODES),
)
async def approve_physical(
    request_id: Annotated[str, Path()],
    principal: CardServicer,
    session: DbSession,
    services: CardServicesDep,
) -> One[PhysicalRequestOut]:
    return One(data=await _decide_physical(session, principal, request_id, services, True, None))


@routes.post(
    "/v1/physical-requests/{request_id}/reject",
    summary="Reject a physical card request",
    responses=error_responses("INVALID_CARD_TRANSITION"),
)
async def reject_physical(
    request_id: Annotated[str, Path()],
    body: Decline,
    principal: CardServicer,
    session: DbSession,
    services: CardServicesDep,
) -> One[PhysicalRequestOut]:
    return One(
        data=await _decide_physical(session, principal, request_id, services, False, body.reason)
    )
