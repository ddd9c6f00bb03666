"""A card's spend controls over HTTP: read, replace, tighten (the cardholder), reset to the
product's defaults, and the dry run that says whether a transaction would be approved."""

from datetime import UTC, datetime
from typing import Literal

from fastapi import Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards import controls
from cardcore.cards.dependencies import CardServicer
from cardcore.cards.repository import load_card
from cardcore.cards.schemas import CardId
from cardcore.kit.access import Cardholder, Partner
from cardcore.kit.envelope import One
from cardcore.kit.errors import CardcoreError, Forbidden, error_responses
from cardcore.kit.money import MinorUnits
from cardcore.kit.principals import Principal
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.models import CardProduct, Program
from cardcore.models.cards import TERMINAL_STATUSES

routes = router(
    tags=["cards"],
    encryption="optional",
    responses=error_responses("NOT_FOUND"),
)


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
