"""Moving a card to another balance of the same owner and currency, where its program allows it."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.balances import service as balances
from cardcore.kit.errors import CardcoreError, validation_error
from cardcore.models import Balance, Card, Program


async def move_to_balance(session: AsyncSession, card: Card, target: Balance) -> Card:
    allowed = await session.scalar(
        select(Program.allow_card_balance_change).where(Program.id == card.program_id)
    )
    if not allowed:
        raise CardcoreError("BALANCE_CHANGE_NOT_ALLOWED")
    current = await session.get(Balance, card.balance_id)
    assert current is not None
    balances.require_active(target)
    if target.owner_id != current.owner_id or target.currency != current.currency:
        raise validation_error(
            "balance_id", "NOT_THE_SAME_OWNER", "The balance must have the same owner and currency."
        )
    card.balance_id = target.id
    await session.flush()
    return card
