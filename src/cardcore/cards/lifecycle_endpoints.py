"""Card lifecycle and spend controls over HTTP: lock, unlock, freeze, close, controls, evaluate."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Body, Path, Query, Request, Security, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.balances.repository import BalanceRepository
from cardcore.cards import controls, lifecycle, reports
from cardcore.cards.dependencies import CardServicer, CardServicesDep
from cardcore.cards.repository import PhysicalRequestRepository, ReportRepository, load_card
from cardcore.cards.schemas import CardOut, DeliveryAddress
from cardcore.cards.service import CardServices
from cardcore.kit.access import Cardholder, Partner, require
from cardcore.kit.envelope import Many, One
from cardcore.kit.errors import CardcoreError, Forbidden, error_responses
from cardcore.kit.money import MinorUnits
from cardcore.kit.pagination import Pagination
from cardcore.kit.principals import Principal, PrincipalKind
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.models import CardProduct, CardStatus, Program, ReportStatus
from cardcore.models.cards import TERMINAL_STATUSES

routes = router(
    tags=["cards"],
    encryption="optional",
    responses=error_responses("NOT_FOUND"),
)

CardId = Annotated[str, Path(description="A card id (`card_…`).")]
PartnerOrNetwork = Annotated[
    Principal, Security(require(PrincipalKind.PARTNER, PrincipalKind.NETWORK))
]
TRANSITION_CODES = ("INVALID_CARD_TRANSITION", "LOCK_IRREVERSIBLE", "CARD_NUMBER_COMPROMISED")
TRANSITION_ERRORS = error_responses(*TRANSITION_CODES)


class LockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason_code: Literal[1, 2, 3, 4, 5, 6, 7, 8, 11] = Field(
        description="The schemes' lock reasons: 1 lost, 2 stolen, 3 pending query, "
        "4 consolidation, 5 inactive, 6 PIN tries exceeded, 7 suspected fraud, 8 replaced, "
        "11 offline PIN attempts exceeded. 1, 2, 5 and 8 are final."
    )


class StatusIn(BaseModel):
    """The simple status switch some partners use: BLOCK is lock code 3 (pending query), ACTIVE
    unlocks."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ACTIVE", "BLOCK"]


class EvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MinorUnits
    currency: str = Field(min_length=3, max_length=3)
    channel: Literal["POS", "ECOM", "ATM", "MOTO"]
    entry_mode: Literal["CHIP", "CONTACTLESS", "MAGSTRIPE", "MANUAL", "ECOM"] = "CHIP"
    mcc: str = Field(pattern=r"^\d{4}$")
    country: str = Field(min_length=2, max_length=2)


class DecisionOut(BaseModel):
    approved: bool
    response_code: str = Field(description="ISO 8583: 00 approved, 57 channel, 61 amount, …")
    rule: str | None = Field(description="The rule that declined.")


@routes.post(
    "/v1/cards/{card_id}/lock",
    summary="Lock a card with a reason code (the partner, or the network locking it from outside)",
    responses=TRANSITION_ERRORS,
)
async def lock(
    card_id: CardId, body: LockIn, principal: PartnerOrNetwork, session: DbSession
) -> One[CardOut]:
    card = await load_card(session, principal, card_id)
    # Lost and stolen locks compromise the number, and lock every card carrying it.
    await lifecycle.carriers(session, card)
    await lifecycle.lock(session, card, body.reason_code, actor=principal.kind.value)
    return One(data=CardOut.of(card))


@routes.post("/v1/cards/{card_id}/unlock", summary="Unlock a card", responses=TRANSITION_ERRORS)
async def unlock(card_id: CardId, principal: Partner, session: DbSession) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await lifecycle.unlock(session, card, actor=principal.kind.value)
    return One(data=CardOut.of(card))


@routes.post(
    "/v1/cards/{card_id}/status",
    summary="Block (lock code 3) or unblock a card: the simple status switch",
    responses=TRANSITION_ERRORS,
)
async def update_status(
    card_id: CardId, body: StatusIn, principal: Partner, session: DbSession
) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    if body.status == "BLOCK":
        await lifecycle.lock(session, card, 3, actor=principal.kind.value)
    else:
        await lifecycle.unlock(session, card, actor=principal.kind.value)
    return One(data=CardOut.of(card))


async def _toggle(
    session: AsyncSession, principal: Principal, card_id: str, frozen: bool
) -> CardOut:
    card = await load_card(session, principal, card_id, lock=True)
    action = lifecycle.freeze if frozen else lifecycle.unfreeze
    await action(session, card, actor=principal.kind.value)
    return CardOut.of(card)


@routes.post("/v1/cards/{card_id}/freeze", summary="Freeze a card", responses=TRANSITION_ERRORS)
async def freeze(card_id: CardId, principal: Partner, session: DbSession) -> One[CardOut]:
    return One(data=await _toggle(session, principal, card_id, True))


@routes.post("/v1/cards/{card_id}/unfreeze", summary="Unfreeze a card", responses=TRANSITION_ERRORS)
async def unfreeze(card_id: CardId, principal: Partner, session: DbSession) -> One[CardOut]:
    return One(data=await _toggle(session, principal, card_id, False))


@routes.post(
    "/v1/me/cards/{card_id}/freeze", summary="Freeze one's own card", responses=TRANSITION_ERRORS
)
async def freeze_mine(card_id: CardId, principal: Cardholder, session: DbSession) -> One[CardOut]:
    return One(data=await _toggle(session, principal, card_id, True))


@routes.post(
    "/v1/me/cards/{card_id}/unfreeze",
    summary="Unfreeze one's own card",
    responses=TRANSITION_ERRORS,
)
async def unfreeze_mine(card_id: CardId, principal: Cardholder, session: DbSession) -> One[CardOut]:
    return One(data=await _toggle(session, principal, card_id, False))


@routes.delete(
    "/v1/cards/{card_id}",
    summary="Close a card for good; the row stays for history",
    responses=TRANSITION_ERRORS,
)
async def close(card_id: CardId, principal: Partner, session: DbSession) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await lifecycle.transition(
        session, card, CardStatus.CLOSED, actor=principal.kind.value, reason="closed"
    )
    return One(data=CardOut.of(card))


# -- spend controls ------------------------------------------------------------------------------


async def _program(session: AsyncSession, program_id: str) -> Program:
    program = await session.get(Program, program_id)
    assert program is not None
    return program


async def _put_controls(
    session: AsyncSession,
    principal: Principal,
    card_id: str,
    body: controls.Controls,
    *,
    tighten_only: bool,
) -> controls.Controls:
    card = await load_card(session, principal, card_id, lock=True)
    if card.status in TERMINAL_STATUSES:
        raise CardcoreError("CARD_NOT_ACTIVE")
    if tighten_only:
        loosened = controls.loosens(controls.parse(card.controls), body)
        if loosened:
            raise Forbidden("A cardholder may only tighten controls: " + "; ".join(loosened) + ".")
    controls.check_program_maxima(body, (await _program(session, card.program_id)).control_maxima)
    card.controls = body.model_dump(mode="json", exclude_none=True)
    await session.flush()
    return controls.parse(card.controls)


@routes.get("/v1/cards/{card_id}/controls", summary="A card's spend controls")
async def get_controls(
    card_id: CardId, principal: CardServicer, session: DbSession
) -> One[controls.Controls]:
    return One(data=controls.parse((await load_card(session, principal, card_id)).controls))


@routes.put(
    "/v1/cards/{card_id}/controls",
    summary="Replace a card's spend controls",
    responses=error_responses("CARD_NOT_ACTIVE"),
)
async def put_controls(
    card_id: CardId, body: controls.Controls, principal: Partner, session: DbSession
) -> One[controls.Controls]:
    return One(data=await _put_controls(session, principal, card_id, body, tighten_only=False))


@routes.get("/v1/me/cards/{card_id}/controls", summary="One's own card's controls")
async def get_my_controls(
    card_id: CardId, principal: Cardholder, session: DbSession
) -> One[controls.Controls]:
    return One(data=controls.parse((await load_card(session, principal, card_id)).controls))


@routes.put(
    "/v1/me/cards/{card_id}/controls",
    summary="Tighten one's own card's controls (never loosen)",
    responses=error_responses("CARD_NOT_ACTIVE"),
)
async def put_my_controls(
    card_id: CardId, body: controls.Controls, principal: Cardholder, session: DbSession
) -> One[controls.Controls]:
    return One(data=await _put_controls(session, principal, card_id, body, tighten_only=True))


@routes.post("/v1/cards/{card_id}/controls/reset", summary="Back to the product's defaults")
async def reset_controls(
    card_id: CardId, principal: Partner, session: DbSession
) -> One[controls.Controls]:
    card = await load_card(session, principal, card_id, lock=True)
    product = await session.get(CardProduct, card.product_id)
    assert product is not None
    card.controls = dict(product.default_controls or {})
    await session.flush()
    return One(data=controls.parse(card.controls))


@routes.post(
    "/v1/cards/{card_id}/controls/evaluate",
    summary="Dry run: would this transaction be approved, and if not, by which rule?",
    status_code=status.HTTP_200_OK,
    responses=error_responses("CURRENCY_MISMATCH"),
)
async def evaluate(
    card_id: CardId, body: EvaluateIn, principal: CardServicer, session: DbSession, request: Request
) -> One[DecisionOut]:
    card = await load_card(session, principal, card_id)
    program = await _program(session, card.program_id)
    product = await session.get(CardProduct, card.product_id)
    assert product is not None
    if body.currency.upper() != product.currency:
        raise CardcoreError("CURRENCY_MISMATCH", f"The card spends {product.currency}.")
    now = datetime.now(UTC)
    transaction = controls.Transaction(
        amount=body.amount,
        currency=body.currency.upper(),
        channel=body.channel,
        entry_mode=body.entry_mode,
        mcc=body.mcc,
        country=body.country.upper(),
    )
    spent = await controls.spent_so_far(session, card, program, now)
    decision = controls.evaluate(card, transaction, program=program, spent=spent, now=now)
    return One(
        data=DecisionOut(
            approved=decision.approved, response_code=decision.response_code, rule=decision.rule
        )
    )


# -- reports, conversion, 3DS, balance -----------------------------------------------------------


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


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


# Nothing to send is a valid request: the body is optional and defaults to empty.
Decline = Annotated[DeclineIn, Body(default_factory=DeclineIn)]


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


class ThreeDsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=320)


class BalanceMoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    balance_id: str


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
    responses=error_responses(*REPORT_CODES, *TRANSITION_CODES),
)
async def report_card(
    card_id: CardId, body: ReportIn, principal: Partner, session: DbSession
) -> One[ReportOut]:
    return One(data=await _report(session, principal, card_id, body.reason))


@routes.post(
    "/v1/me/cards/{card_id}/reports",
    summary="Report one's own card",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(*REPORT_CODES, *TRANSITION_CODES),
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
    found = await reports.request_physical(
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
    await reports.decide_physical(
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


@routes.post(
    "/v1/cards/{card_id}/3ds", summary="Enroll the card in 3-D Secure (OTP to phone/email)"
)
async def enroll_3ds(
    card_id: CardId, body: ThreeDsIn, principal: Partner, session: DbSession
) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    return One(
        data=CardOut.of(await reports.enroll_3ds(session, card, phone=body.phone, email=body.email))
    )


@routes.delete("/v1/cards/{card_id}/3ds", summary="Remove the card from 3-D Secure")
async def unenroll_3ds(card_id: CardId, principal: Partner, session: DbSession) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    return One(data=CardOut.of(await reports.unenroll_3ds(session, card)))


@routes.post(
    "/v1/cards/{card_id}/balance",
    summary="Move the card to another balance of the same owner (if the program allows)",
    responses=error_responses("BALANCE_CHANGE_NOT_ALLOWED", "BALANCE_NOT_ACTIVE"),
)
async def move_balance(
    card_id: CardId, body: BalanceMoveIn, principal: Partner, session: DbSession
) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    target = await BalanceRepository(session, principal.tenant_id).get_or_404(body.balance_id)
    return One(data=CardOut.of(await reports.move_to_balance(session, card, target)))
