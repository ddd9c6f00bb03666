"""Reads of cards and what hangs off them, scoped to the caller's program; a cardholder reads only
their own cards (load_card)."""

from datetime import datetime

from sqlalchemy import Select, or_
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.errors import NotFound
from cardcore.kit.principals import Principal, PrincipalKind
from cardcore.kit.repository import TenantRepository
from cardcore.models import (
    Card,
    CardProduct,
    CardReport,
    CardRequest,
    CardStatus,
    PhysicalRequest,
    ReportStatus,
    ZonePinKey,
)


class ProductRepository(TenantRepository[CardProduct]):
    model = CardProduct
    noun = "product"


class CardRepository(TenantRepository[Card]):
    model = Card
    noun = "card"

    def listed(
        self,
        *,
        user_id: str | None = None,
        balance_id: str | None = None,
        status: CardStatus | None = None,
        type: str | None = None,
        last4: str | None = None,
    ) -> Select[Card]:
        return self.matching(
            (Card.user_id, user_id),
            (Card.balance_id, balance_id),
            (Card.status, status),
            (Card.type, type),
            (Card.last4, last4),
        )

    async def by_pan_hash(self, pan_hash: bytes) -> Card | None:
        """The card a PAN names now: of the cards that carried it, the one not yet replaced."""
        found: Card | None = await self.session.scalar(
            self.readable().where(Card.pan_hash == pan_hash, Card.replaced_by.is_(None))
        )
        return found


class RequestRepository(TenantRepository[CardRequest]):
    model = CardRequest
    noun = "request"


class ReportRepository(TenantRepository[CardReport]):
    model = CardReport
    noun = "card report"

    def listed(self, *, status: ReportStatus | None = None) -> Select[CardReport]:
        return self.matching((CardReport.status, status))


class ZonePinKeyRepository(TenantRepository[ZonePinKey]):
    model = ZonePinKey
    noun = "zone PIN key"

    async def current(self) -> ZonePinKey | None:
        """The key the processor encrypts new PIN blocks under (at most one is not replaced)."""
        found: ZonePinKey | None = await self.session.scalar(
            self.readable().where(ZonePinKey.replaced_at.is_(None))
        )
        return found

    async def verifying(self, now: datetime) -> list[ZonePinKey]:
        """The keys that still verify at `now`: the current one first, then replaced ones in
        their grace period, newest first."""
        rows = await self.session.scalars(
            self.readable()
            .where(or_(ZonePinKey.replaced_at.is_(None), ZonePinKey.usable_until > now))
            .order_by(ZonePinKey.replaced_at.is_not(None), ZonePinKey.id.desc())
        )
        return list(rows)


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
