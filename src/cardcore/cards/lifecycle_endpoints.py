"""Card lifecycle and spend controls over HTTP: lock, unlock, freeze, close, controls, evaluate."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Path, Request, Security, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.auth.dependencies import Cardholder, Partner, partner_or_admin, require
from cardcore.auth.principals import Principal, PrincipalKind
from cardcore.cards import controls, lifecycle
from cardcore.cards.endpoints import card_out, load_card
from cardcore.cards.schemas import CardOut
from cardcore.db import DbSession
from cardcore.kit.envelope import One
from cardcore.kit.errors import CardcoreError, Forbidden, error_responses
from cardcore.kit.routing import router
from cardcore.models import CardProduct, Program

routes = router(
    tags=["cards"],
    encryption="optional",
    responses=error_responses("UNAUTHENTICATED", "FORBIDDEN", "VALIDATION_ERROR", "NOT_FOUND"),
)

CardId = Annotated[str, Path(description="A card id (`card_…`).")]
PartnerOrNetwork = Annotated[
    Principal, Security(require(PrincipalKind.PARTNER, PrincipalKind.NETWORK))
]
Support = Annotated[Principal, Security(partner_or_admin("cards.service"))]
TRANSITION_ERRORS = error_responses("INVALID_CARD_TRANSITION", "LOCK_IRREVERSIBLE")


class LockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason_code: Literal[1, 2, 3, 4, 5, 6, 7, 8, 11] = Field(
        description="Seed 003: 1 lost, 2 stolen, 3 pending query, 4 consolidation, 5 inactive, "
        "6 PIN tries exceeded, 7 suspected fraud, 8 replaced, 11 offline PIN attempts exceeded. "
        "1, 2, 5 and 8 are final."
    )


class StatusIn(BaseModel):
    """Seed 002's update-card-status: BLOCK is lock code 3 (pending query), ACTIVE unlocks."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ACTIVE", "BLOCK"]


class LifecycleOut(CardOut):
    lock_reason: int | None
    failure_action_code: str | None = Field(description="What a locked card answers at POS/ATM.")


class EvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    channel: Literal["POS", "ECOM", "ATM", "MOTO"]
    entry_mode: Literal["CHIP", "CONTACTLESS", "MAGSTRIPE", "MANUAL", "ECOM"] = "CHIP"
    mcc: str = Field(pattern=r"^\d{4}$")
    country: str = Field(min_length=2, max_length=2)


class DecisionOut(BaseModel):
    approved: bool
    response_code: str = Field(description="ISO 8583: 00 approved, 57 channel, 61 amount, …")
    rule: str | None = Field(description="The rule that declined.")


def lifecycle_out(card) -> LifecycleOut:  # type: ignore[no-untyped-def]
    return LifecycleOut(
        **card_out(card).model_dump(),
        lock_reason=card.lock_reason if card.status == "LOCKED" else None,
        failure_action_code=lifecycle.failure_action_code(card),
    )


@routes.post(
    "/v1/cards/{card_id}/lock",
    summary="Lock a card with a reason code (partner, or the network: seed 003 lock outside)",
    responses=TRANSITION_ERRORS,
)
async def lock(
    card_id: CardId, body: LockIn, principal: PartnerOrNetwork, session: DbSession
) -> One[LifecycleOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await lifecycle.lock(session, card, body.reason_code, actor=principal.kind.value)
    return One(data=lifecycle_out(card))


@routes.post("/v1/cards/{card_id}/unlock", summary="Unlock a card", responses=TRANSITION_ERRORS)
async def unlock(card_id: CardId, principal: Partner, session: DbSession) -> One[LifecycleOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await lifecycle.unlock(session, card, actor=principal.kind.value)
    return One(data=lifecycle_out(card))


@routes.post(
    "/v1/cards/{card_id}/status",
    summary="Seed 002 update-card-status: BLOCK (lock code 3) or ACTIVE (unlock)",
    responses=TRANSITION_ERRORS,
)
async def update_status(
    card_id: CardId, body: StatusIn, principal: Partner, session: DbSession
) -> One[LifecycleOut]:
    card = await load_card(session, principal, card_id, lock=True)
    if body.status == "BLOCK":
        await lifecycle.lock(session, card, 3, actor=principal.kind.value)
    else:
        await lifecycle.unlock(session, card, actor=principal.kind.value)
    return One(data=lifecycle_out(card))


async def _toggle(
    session: AsyncSession, principal: Principal, card_id: str, frozen: bool
) -> LifecycleOut:
    card = await load_card(session, principal, card_id, lock=True)
    action = lifecycle.freeze if frozen else lifecycle.unfreeze
    await action(session, card, actor=principal.kind.value)
    return lifecycle_out(card)


@routes.post("/v1/cards/{card_id}/freeze", summary="Freeze a card", responses=TRANSITION_ERRORS)
async def freeze(card_id: CardId, principal: Partner, session: DbSession) -> One[LifecycleOut]:
    return One(data=await _toggle(session, principal, card_id, True))


@routes.post("/v1/cards/{card_id}/unfreeze", summary="Unfreeze a card", responses=TRANSITION_ERRORS)
async def unfreeze(card_id: CardId, principal: Partner, session: DbSession) -> One[LifecycleOut]:
    return One(data=await _toggle(session, principal, card_id, False))


@routes.post(
    "/v1/me/cards/{card_id}/freeze", summary="Freeze one's own card", responses=TRANSITION_ERRORS
)
async def freeze_mine(
    card_id: CardId, principal: Cardholder, session: DbSession
) -> One[LifecycleOut]:
    return One(data=await _toggle(session, principal, card_id, True))


@routes.post(
    "/v1/me/cards/{card_id}/unfreeze",
    summary="Unfreeze one's own card",
    responses=TRANSITION_ERRORS,
)
async def unfreeze_mine(
    card_id: CardId, principal: Cardholder, session: DbSession
) -> One[LifecycleOut]:
    return One(data=await _toggle(session, principal, card_id, False))


@routes.delete(
    "/v1/cards/{card_id}",
    summary="Close a card for good (seed 003 remove); the row stays for history",
    responses=TRANSITION_ERRORS,
)
async def close(card_id: CardId, principal: Partner, session: DbSession) -> One[LifecycleOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await lifecycle.transition(session, card, "CLOSED", actor=principal.kind.value, reason="closed")
    return One(data=lifecycle_out(card))


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
    if card.status in lifecycle.TERMINAL:
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
    card_id: CardId, principal: Support, session: DbSession
) -> One[controls.Controls]:
    return One(data=controls.parse((await load_card(session, principal, card_id)).controls))


@routes.put("/v1/cards/{card_id}/controls", summary="Replace a card's spend controls")
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
)
async def evaluate(
    card_id: CardId, body: EvaluateIn, principal: Support, session: DbSession, request: Request
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
