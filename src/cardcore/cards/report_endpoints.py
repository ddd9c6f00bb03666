"""Card reports over HTTP: report a card lost, stolen, damaged, not received or used in fraud;
list the reports; replace, renew or decline."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards import lifecycle, reports
from cardcore.cards.dependencies import CardServicer, CardServicesDep
from cardcore.cards.repository import ReportRepository, load_card
from cardcore.cards.schemas import CardId, CardOut, Decline
from cardcore.kit.access import Cardholder, Partner
from cardcore.kit.envelope import Many, One
from cardcore.kit.errors import error_responses
from cardcore.kit.pagination import Pagination
from cardcore.kit.principals import Principal
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.models import ReportStatus

routes = router(
    tags=["cards"],
    encryption="optional",
    responses=error_responses("NOT_FOUND"),
)


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["LOST", "STOLEN", "DAMAGED", "NOT_RECEIVED", "FRAUD"]


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    card_id: str
    reason: str
    status: str = Field(
        description="OPEN, REPLACED, RENEWED, DECLINED, or SUPERSEDED (by a later lost, stolen "
        "or fraud report on the same card)."
    )
    reported_by: str
    replacement_card_id: str | None
    decline_reason: str | None
    superseded_by: str | None = Field(description="The report that took this one's place.")
    created_at: datetime


ReportId = Annotated[str, Path(description="A card report id (`rpt_…`).")]


async def _report(
    session: AsyncSession, principal: Principal, card_id: str, reason: str
) -> ReportOut:
    card = await load_card(session, principal, card_id)
    await lifecycle.carriers(session, card)
    found = await reports.report(session, card, reason, reported_by=principal.kind.value)
    await session.refresh(found)
    return ReportOut.model_validate(found)


REPORT_CODES = ("CARD_REPLACED", "CARD_NOT_REPORTABLE", "REPORT_ALREADY_OPEN")
ACTION_CODES = (
    "REPORT_NOT_OPEN",
    "CARD_REPLACED",
    "CARD_NUMBER_COMPROMISED",
    "INVALID_CARD_TRANSITION",
)


@routes.post(
    "/v1/cards/{card_id}/reports",
    summary="Report a card lost, stolen, damaged, not received or used in fraud",
    description="Lost, stolen and fraud lock the card at once (codes 1, 2, 7), and every other "
    "card with its number; the number never works again. One open report per card: a lost, "
    "stolen or fraud report supersedes an open damaged or not-received one, anything else is "
    "`409 REPORT_ALREADY_OPEN`. A replaced, closed, expired or finally locked card takes no "
    "report.",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(*REPORT_CODES, *lifecycle.TRANSITION_CODES),
)
async def report_card(
    card_id: CardId, body: ReportIn, principal: Partner, session: DbSession
) -> One[ReportOut]:
    return One(data=await _report(session, principal, card_id, body.reason))


@routes.post(
    "/v1/me/cards/{card_id}/reports",
    summary="Report one's own card",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(*REPORT_CODES, *lifecycle.TRANSITION_CODES),
)
async def report_my_card(
    card_id: CardId, body: ReportIn, principal: Cardholder, session: DbSession
) -> One[ReportOut]:
    return One(data=await _report(session, principal, card_id, body.reason))


@routes.get("/v1/card-reports", summary="Card reports")
async def list_reports(
    principal: CardServicer,
    session: DbSession,
    page: Pagination,
    report_status: Annotated[ReportStatus | None, Query(alias="status")] = None,
) -> Many[ReportOut]:
    repository = ReportRepository(session, principal.tenant_id)
    found, meta = await repository.page(repository.listed(status=report_status), page)
    return Many(data=[ReportOut.model_validate(r) for r in found], meta=meta)


@routes.post(
    "/v1/card-reports/{report_id}/replace",
    summary="Replace the reported card",
    description="Lost, stolen, fraud: a new number. Damaged, not received: the same number "
    "with a new expiry and CVV2, unless the number was compromised since (then a new one too). "
    "The old card is locked with code 8; balance, controls and PIN carry over.",
    responses=error_responses(*ACTION_CODES, "LOCK_IRREVERSIBLE", "BIN_EXHAUSTED"),
)
async def replace_card(
    report_id: ReportId, principal: CardServicer, session: DbSession, services: CardServicesDep
) -> One[CardOut]:
    # Not locked here: the service locks the card first, then the report (the order every
    # report path takes).
    found = await ReportRepository(session, principal.tenant_id).get_or_404(report_id)
    new = await reports.replace(session, services, found, actor=principal.kind.value)
    return One(data=CardOut.of(new))


@routes.post(
    "/v1/card-reports/{report_id}/renew",
    summary="Renew: same number, new expiry and CVV2",
    description="Refused once the number was reported lost, stolen or used in fraud.",
    responses=error_responses(*ACTION_CODES),
)
async def renew_card(
    report_id: ReportId, principal: CardServicer, session: DbSession
) -> One[CardOut]:
    found = await ReportRepository(session, principal.tenant_id).get_or_404(report_id)
    return One(data=CardOut.of(await reports.renew(session, found)))


@routes.post(
    "/v1/card-reports/{report_id}/decline",
    summary="Decline a report",
    description="The card stays as it is. Refused once the number was reported lost, stolen or "
    "used in fraud: such a report is resolved by a replacement.",
    responses=error_responses(*ACTION_CODES, "LOCK_IRREVERSIBLE"),
)
async def decline_report(
    report_id: ReportId, body: Decline, principal: CardServicer, session: DbSession
) -> One[CardOut]:
    found = await ReportRepository(session, principal.tenant_id).get_or_404(report_id)
    return One(
        data=CardOut.of(
            await reports.decline(session, found, body.reason, actor=principal.kind.value)
        )
    )
