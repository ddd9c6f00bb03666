"""The card lifecycle over HTTP: lock, unlock, the simple status switch, freeze, unfreeze, close."""

from typing import Annotated, Literal

from fastapi import Security
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards import lifecycle
from cardcore.cards.repository import load_card
from cardcore.cards.schemas import CardId, CardOut
from cardcore.kit.access import Cardholder, Partner, partner_or_admin, require
from cardcore.kit.envelope import One
from cardcore.kit.errors import error_responses
from cardcore.kit.principals import Principal, PrincipalKind
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.models import CardStatus

# The partner, or ops staff whose role the matrix allows ("cards.freeze").
CardFreezer = Annotated[Principal, Security(partner_or_admin("cards.freeze"))]


# The partner, or ops staff whose role the matrix allows ("cards.unlock").
CardUnlocker = Annotated[Principal, Security(partner_or_admin("cards.unlock"))]

routes = router(
    tags=["cards"],
    encryption="optional",
    responses=error_responses("NOT_FOUND"),
)

PartnerOrNetwork = Annotated[
    Principal, Security(require(PrincipalKind.PARTNER, PrincipalKind.NETWORK))
]
TRANSITION_ERRORS = error_responses(*lifecycle.TRANSITION_CODES)


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
async def unlock(card_id: CardId, principal: CardUnlocker, session: DbSession) -> One[CardOut]:
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
async def freeze(card_id: CardId, principal: CardFreezer, session: DbSession) -> One[CardOut]:
    return One(data=await _toggle(session, principal, card_id, True))


@routes.post("/v1/cards/{card_id}/unfreeze", summary="Unfreeze a card", responses=TRANSITION_ERRORS)
async def unfreeze(card_id: CardId, principal: CardFreezer, session: DbSession) -> One[CardOut]:
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
