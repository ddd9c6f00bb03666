"""Moving a card to another balance of the same owner over HTTP."""

from pydantic import BaseModel, ConfigDict

from cardcore.balances.repository import BalanceRepository
from cardcore.cards import balance_moves
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


class BalanceMoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    balance_id: str


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
    return One(data=CardOut.of(await balance_moves.move_to_balance(session, card, target)))
