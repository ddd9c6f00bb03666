"""3-D Secure enrollment: where the card's one-time passwords go (a phone, an email, or both)."""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.customers import reference
from cardcore.kit.errors import validation_error
from cardcore.models import Card


async def enroll_3ds(
    session: AsyncSession, card: Card, *, phone: str | None, email: str | None
) -> Card:
    if not phone and not email:
        raise validation_error("phone", "REQUIRED", "Give a phone, an email, or both.")
    card.three_ds = {
        "enrolled": True,
        "phone": reference.normalize_phone(phone) if phone else None,
        "email": reference.normalize_email(email) if email else None,
        "enrolled_at": datetime.now(UTC).isoformat(),
    }
    await session.flush()
    return card


async def unenroll_3ds(session: AsyncSession, card: Card) -> Card:
    card.three_ds = None
    await session.flush()
    return card
