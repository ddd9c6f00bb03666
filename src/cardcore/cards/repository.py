"""Reads of cards and what hangs off them, scoped to the caller's program; a cardholder reads only
their own cards (load_card)."""

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.errors import NotFound
from cardcore.kit.principals import Principal, PrincipalKind
from cardcore.kit.repository import TenantRepository
from cardcore.models import Card, CardProduct, CardReport, CardRequest, PhysicalRequest


class ProductRepository(TenantRepository[CardProduct]):
    model = CardProduct
    noun = "product"


class CardRepository(TenantRepository[Card]):
    model = Card
    noun = "card"


class RequestRepository(TenantRepository[CardRequest]):
    model = CardRequest
    noun = "request"


class ReportRepository(TenantRepository[CardReport]):
    model = CardReport
    noun = "card report"


class PhysicalRequestRepository(TenantRepository[PhysicalRequest]):
    model = PhysicalRequest
    noun = "physical request"


async def load_card(
    session: AsyncSession, principal: Principal, card_id: str, *, lock: bool = False
) -> Card:
    card = await CardRepository(session, principal.tenant_id).get_or_404(card_id, for_update=lock)
    # A cardholder sees only their own cards: anyone else's is as absent as a missing one.
    if principal.kind is PrincipalKind.CARDHOLDER and card.user_id != principal.user_id:
        raise NotFound("card")
    return card
