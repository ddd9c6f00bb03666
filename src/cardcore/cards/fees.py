"""Where card fees are charged: the one place issuance (and, from the periodic job the fees
issue adds, the monthly card fee) calls. Until the program has a fee schedule there is nothing to
charge, so this charges nothing; the fees issue fills it in without touching the card service."""

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.models import Card


async def on_card_issued(session: AsyncSession, card: Card) -> None:
    """Charge the card issuance fee of the card's product, if the program has one."""
    return None
