"""3-D Secure enrollment over HTTP: enroll a card (one-time passwords to a phone, an email, or
both), or remove it."""

from pydantic import BaseModel, ConfigDict, Field

from cardcore.cards import three_ds
from cardcore.cards.repository import load_card
from cardcore.cards.schemas import CardId, CardOut
from cardcore.kit.access import Partner
from cardcore.kit.envelope import One
from cardcore.kit.errors import error_responses
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession

routes = router(
    tags=["cards"],
    encryption="optional",
    responses=error_responses("NOT_FOUND"),
)


class ThreeDsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=320)


@routes.post(
    "/v1/cards/{card_id}/3ds", summary="Enroll the card in 3-D Secure (OTP to phone/email)"
)
async def enroll_3ds(
    card_id: CardId, body: ThreeDsIn, principal: Partner, session: DbSession
) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    enrolled = await three_ds.enroll_3ds(session, card, phone=body.phone, email=body.email)
    return One(data=CardOut.of(enrolled))


@routes.delete("/v1/cards/{card_id}/3ds", summary="Remove the card from 3-D Secure")
async def unenroll_3ds(card_id: CardId, principal: Partner, session: DbSession) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    return One(data=CardOut.of(await three_ds.unenroll_3ds(session, card)))
