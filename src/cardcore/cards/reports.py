"""Reported cards (lost, stolen, damaged, not received, fraud) and their replacement, renewal or
decline.

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
"""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards import lifecycle
from cardcore.cards.service import CardServices, expiry_after, issue_successor
from cardcore.fees import service as fees
from cardcore.kit.errors import CardcoreError
from cardcore.models import (
    Card,
    CardProduct,
    CardReport,
    CardStatus,
    ReportStatus,
)
from cardcore.models.cards import TERMINAL_STATUSES
from cardcore.models.ids import new_id

# Which reports need a new number (the old one may be in someone else's hands).
NEW_NUMBER = frozenset(lifecycle.COMPROMISE_LOCKS)


async def open_report(session: AsyncSession, card: Card) -> CardReport | None:
    return await session.scalar(
        select(CardReport)
        .where(CardReport.card_id == card.id, CardReport.status == ReportStatus.OPEN)
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
    if found.status != ReportStatus.OPEN:
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
    if same_number and old.status == CardStatus.CLOSED:
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
