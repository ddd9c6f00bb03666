"""A virtual card made physical: the holder's request for a plastic with the same number, and the
partner's decision on it. A virtual card becomes physical only while it is ACTIVE, current (not
replaced) and clean (its number never reported lost, stolen or used in fraud); the plastic is a
new card in its place (cards/service.issue_successor)."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards import lifecycle
from cardcore.cards.service import CardServices, issue_successor
from cardcore.customers import reference
from cardcore.customers.embossing import embossing_names
from cardcore.fees import service as fees
from cardcore.kit.errors import CardcoreError
from cardcore.models import Card, CardProduct, CardStatus, PhysicalRequest, RequestStatus, User


async def _convertible(session: AsyncSession, card: Card) -> None:
    if card.replaced_by is not None:
        raise CardcoreError("CARD_REPLACED")
    if await lifecycle.compromised(session, card):
        raise CardcoreError("CARD_NUMBER_COMPROMISED")
    if card.type != "VIRTUAL" or card.status != CardStatus.ACTIVE:
        raise CardcoreError("INVALID_CARD_TYPE", "Only an ACTIVE virtual card becomes physical.")


async def request_physical(
    session: AsyncSession, card: Card, *, embossing_name: str, delivery_address: dict[str, Any]
) -> PhysicalRequest:
    await _convertible(session, card)
    product = await session.get(CardProduct, card.product_id)
    assert product is not None
    if "PHYSICAL" not in product.form_factors:
        raise CardcoreError("FORM_FACTOR_NOT_ALLOWED")
    user = await session.get(User, card.user_id) if card.user_id else None
    allowed = (
        embossing_names(user.first_name or "", user.middle_name, user.last_name)
        if user and user.last_name
        else []
    )
    if embossing_name not in allowed:
        raise CardcoreError("EMBOSSING_NAME_NOT_ALLOWED")
    address = dict(delivery_address)
    address["country"] = reference.country_code(
        address.get("country", ""), "delivery_address.country"
    )
    found = PhysicalRequest(
        program_id=card.program_id,
        card_id=card.id,
        delivery_address=address,
        embossing_name=embossing_name,
    )
    session.add(found)
    await session.flush()
    return found


async def decide_physical(
    session: AsyncSession,
    services: CardServices,
    found: PhysicalRequest,
    *,
    approve: bool,
    reason: str | None,
    actor: str,
) -> PhysicalRequest:
    if found.status != RequestStatus.PENDING:
        raise CardcoreError("INVALID_CARD_TRANSITION", f"The request is already {found.status}.")
    if approve:
        virtual = await session.get(
            Card, found.card_id, with_for_update=True, populate_existing=True
        )
        assert virtual is not None
        # The card may have been reported, replaced or converted since the request was made.
        await _convertible(session, virtual)
        physical = await issue_successor(
            session,
            services,
            virtual,
            type="PHYSICAL",
            same_number=True,
            embossing_name=found.embossing_name,
            delivery_address=found.delivery_address,
        )
        found.physical_card_id = physical.id
        # A plastic is a card made: its form factor's issuance fee, if the schedule has one.
        await fees.on_card_issued(session, physical)
    found.status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
    found.reject_reason = None if approve else reason
    found.resolved_at = datetime.now(UTC)
    await session.flush()
    return found
