"""Reported cards and their replacement or renewal, virtual-to-physical conversion, 3DS
enrollment, and moving a card to another balance.

The rules a card-security officer wants, so that a number reported lost, stolen or used in fraud
never belongs to a card that can authorize again:

- A card has at most one OPEN report (a unique index backs this). A lost, stolen or fraud report
  takes the place of an open damaged or not-received one, which becomes SUPERSEDED and can no
  longer be acted on; any other second report is refused.
- A replaced, closed, expired or finally locked card takes no report: the card that replaced it
  does, and a final lock has already decided.
- A report is acted on once, and never once its card was replaced by something else.
- A replacement keeps the number only for damaged or not-received cards whose number was never
  compromised; otherwise it gets a new one. Renewing (same number) or declining a report is
  refused once the number is compromised: what is left is a replacement.
- A virtual card becomes physical (same number) only while it is ACTIVE, current and clean.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.balances import service as balances
from cardcore.cards import lifecycle
from cardcore.cards.service import CardServices, expiry_after, issue_successor
from cardcore.customers import reference
from cardcore.customers.embossing import embossing_names
from cardcore.fees import service as fees
from cardcore.kit.errors import CardcoreError, validation_error
from cardcore.models import (
    Balance,
    Card,
    CardProduct,
    CardReport,
    PhysicalRequest,
    Program,
    ReportStatus,
    RequestStatus,
    User,
)
from cardcore.models.cards import TERMINAL_STATUSES
from cardcore.models.ids import new_id

# Which reports need a new number (the old one may be in someone else's hands).
NEW_NUMBER = frozenset(lifecycle.COMPROMISE_LOCKS)


async def open_report(session: AsyncSession, card: Card) -> CardReport | None:
    return await session.scalar(
        select(CardReport)
        .where(CardReport.card_id == card.id, CardReport.status == "OPEN")
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def report(session: AsyncSession, card: Card, reason: str, *, reported_by: str) -> CardReport:
    """Report a card; the caller holds the row locks of every card carrying its number
    (`lifecycle.carriers`), so the open report read here cannot change under us."""
    if card.replaced_by is not None:
        raise CardcoreError("CARD_REPLACED")
    if card.status in TERMINAL_STATUSES:
        raise CardcoreError("CARD_NOT_REPORTABLE", f"The card is {card.status}.")
    earlier = await open_report(session, card)
    if earlier is not None and not (reason in NEW_NUMBER and earlier.reason not in NEW_NUMBER):
        raise CardcoreError(
            "REPORT_ALREADY_OPEN", f"The card has an open {earlier.reason} report {earlier.id}."
        )
    if lifecycle.finally_locked(card):
        raise CardcoreError(
            "CARD_NOT_REPORTABLE", f"The card is locked for good (code {card.lock_reason})."
        )
    found = CardReport(
        program_id=card.program_id,
        card_id=card.id,
        reason=reason,
        reported_by=reported_by,
        prior_status=card.status,
        prior_lock_reason=card.lock_reason,
    )
    if earlier is not None:
        earlier.status, earlier.resolved_at = ReportStatus.SUPERSEDED, datetime.now(UTC)
        earlier.superseded_by = found.id = new_id("rpt")
        await session.flush()
    session.add(found)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        # Only a caller that skipped the card lock gets here; the index still refuses.
        raise CardcoreError("REPORT_ALREADY_OPEN") from exc
    if reason in NEW_NUMBER:
        await lifecycle.compromise(session, card, reason, actor=reported_by)
    return found


async def _reported_card(session: AsyncSession, found: CardReport) -> Card:
    """The report's card, row-locked, and the report re-read under that lock: cards are locked
    before reports everywhere, so a report and an action on it cannot deadlock."""
    card = await session.get(Card, found.card_id, with_for_update=True, populate_existing=True)
    assert card is not None
    await session.refresh(found, with_for_update=True)
    if found.status != "OPEN":
        raise CardcoreError("REPORT_NOT_OPEN", f"The report is already {found.status}.")
    if card.replaced_by is not None:
        raise CardcoreError("CARD_REPLACED")
    return card


async def replace(
    session: AsyncSession, services: CardServices, found: CardReport, *, actor: str
) -> Card:
    old = await _reported_card(session, found)
    # A number that was compromised since the report (a lock from outside) is not handed out
    # again on a new card, whatever the report said.
    same_number = found.reason not in NEW_NUMBER and not await lifecycle.compromised(session, old)
    if same_number and old.status == "CLOSED":
        raise CardcoreError(
            "INVALID_CARD_TRANSITION", "The card is CLOSED: its number stays closed."
        )
    new = await issue_successor(
        session,
        services,
        old,
        type=old.type,
        same_number=same_number,
        embossing_name=old.embossing_name,
        delivery_address=old.delivery_address,
    )
    if old.status not in TERMINAL_STATUSES:
        await lifecycle.lock(session, old, 8, actor=actor)
    await fees.on_card_replaced(session, new)
    found.status, found.replacement_card_id = ReportStatus.REPLACED, new.id
    found.resolved_at = datetime.now(UTC)
    await session.flush()
    return new


async def renew(session: AsyncSession, found: CardReport) -> Card:
    """Same card, same number; a new expiry (and so a new CVV2)."""
    card = await _reported_card(session, found)
    if await lifecycle.compromised(session, card):
        raise CardcoreError("CARD_NUMBER_COMPROMISED")
    if card.status in TERMINAL_STATUSES:
        raise CardcoreError("INVALID_CARD_TRANSITION", f"The card is {card.status}.")
    product = await session.get(CardProduct, card.product_id)
    assert product is not None
    card.expiry_month, card.expiry_year = expiry_after(product.validity_months, datetime.now(UTC))
    found.status, found.resolved_at = ReportStatus.RENEWED, datetime.now(UTC)
    await session.flush()
    return card


async def decline(
    session: AsyncSession, found: CardReport, reason: str | None, *, actor: str
) -> Card:
    """Not acted on: the card stays as it is. A compromised number is not declined back to
    life, so such a report waits for its replacement."""
    card = await _reported_card(session, found)
    if await lifecycle.compromised(session, card):
        raise CardcoreError("CARD_NUMBER_COMPROMISED")
    found.status, found.decline_reason = ReportStatus.DECLINED, reason
    found.resolved_at = datetime.now(UTC)
    await session.flush()
    return card


# -- virtual to physical -------------------------------------------------------------------------


async def _convertible(session: AsyncSession, card: Card) -> None:
    if card.replaced_by is not None:
        raise CardcoreError("CARD_REPLACED")
    if await lifecycle.compromised(session, card):
        raise CardcoreError("CARD_NUMBER_COMPROMISED")
    if card.type != "VIRTUAL" or card.status != "ACTIVE":
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
    if found.status != "PENDING":
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


# -- 3DS and balance -----------------------------------------------------------------------------


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
