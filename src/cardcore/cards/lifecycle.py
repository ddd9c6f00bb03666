"""The card status machine, in one place.

    INACTIVE ─activate─▶ ACTIVE ◀─unfreeze/unlock─ FROZEN, LOCKED
    any live state ─freeze─▶ FROZEN, ─lock(code)─▶ LOCKED, ─close─▶ CLOSED, ─expiry job─▶ EXPIRED

CLOSED and EXPIRED are terminal. Unfreeze and unlock return a card to the state it had before
(ACTIVE, or INACTIVE for a physical card never activated). Locks carry seed 003's reason codes;
codes 1, 2, 5 and 8 can never be unlocked. Every change writes `card.status_changed`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards.events import CardStatusChanged
from cardcore.kit.errors import CardcoreError
from cardcore.kit.jobs import JobContext, job
from cardcore.kit.outbox import record_event
from cardcore.models import Card

LIVE = ("INACTIVE", "ACTIVE", "FROZEN", "LOCKED")
TERMINAL = ("CLOSED", "EXPIRED")
STATES = LIVE + TERMINAL

TRANSITIONS: dict[str, frozenset[str]] = {
    "INACTIVE": frozenset({"ACTIVE", "FROZEN", "LOCKED", "CLOSED", "EXPIRED"}),
    "ACTIVE": frozenset({"FROZEN", "LOCKED", "CLOSED", "EXPIRED"}),
    "FROZEN": frozenset({"ACTIVE", "INACTIVE", "LOCKED", "CLOSED", "EXPIRED"}),
    # LOCKED → LOCKED: a lock may be replaced by a graver one (pending query → stolen).
    "LOCKED": frozenset({"ACTIVE", "INACTIVE", "LOCKED", "CLOSED", "EXPIRED"}),
    "CLOSED": frozenset(),
    "EXPIRED": frozenset(),
}


@dataclass(frozen=True)
class LockReason:
    code: int
    name: str
    failure_action_code: str
    irreversible: bool
    iso_response: str


# Seed 003's table; code 11 has no failure action code there, and takes PIN tries' (1006).
LOCK_REASONS: dict[int, LockReason] = {
    reason.code: reason
    for reason in (
        LockReason(1, "CARD_LOST", "2008", True, "41"),
        LockReason(2, "CARD_STOLEN", "2009", True, "43"),
        LockReason(3, "PENDING_QUERY", "1000", False, "05"),
        LockReason(4, "CARD_CONSOLIDATION", "1016", False, "05"),
        LockReason(5, "CARD_INACTIVE", "1018", True, "05"),
        LockReason(6, "PIN_TRIES_EXCEEDED", "1006", False, "75"),
        LockReason(7, "SUSPECTED_FRAUD", "1002", False, "59"),
        LockReason(8, "CARD_REPLACED", "1011", True, "05"),
        LockReason(11, "OFFLINE_PIN_ATTEMPTS_EXCEEDED", "1006", False, "75"),
    )
}


async def transition(
    session: AsyncSession,
    card: Card,
    to: str,
    *,
    actor: str,
    reason: str | None = None,
    lock_code: int | None = None,
) -> Card:
    current = card.status
    if to not in TRANSITIONS[current]:
        raise CardcoreError(
            "INVALID_CARD_TRANSITION", f"The card is {current}; it cannot become {to}."
        )
    if to == "LOCKED":
        if lock_code not in LOCK_REASONS:
            raise CardcoreError("VALIDATION_ERROR", f"Unknown lock reason code {lock_code}.")
        final = card.lock_reason in LOCK_REASONS and LOCK_REASONS[card.lock_reason].irreversible
        # Only "replaced" (8) may succeed another final lock: a lost card is then replaced.
        if current == "LOCKED" and final and lock_code != 8:
            raise CardcoreError("LOCK_IRREVERSIBLE", "An irreversible lock cannot be replaced.")
        card.lock_reason = lock_code
        reason = reason or LOCK_REASONS[lock_code].name
    if current in ("ACTIVE", "INACTIVE") and to in ("FROZEN", "LOCKED"):
        card.previous_status = current
    if to in ("ACTIVE", "INACTIVE") and current in ("FROZEN", "LOCKED"):
        card.lock_reason = None
    if to == "ACTIVE" and card.activated_at is None:
        card.activated_at = datetime.now(UTC)
    card.status = to
    await session.flush()
    record_event(
        session,
        program_id=card.program_id,
        object_id=card.id,
        data=CardStatusChanged(
            id=card.id,
            from_status=current,
            to_status=to,
            reason=reason,
            actor=actor,
            lock_reason=card.lock_reason if to == "LOCKED" else None,
        ),
    )
    return card


async def lock(session: AsyncSession, card: Card, code: int, *, actor: str) -> Card:
    return await transition(session, card, "LOCKED", actor=actor, lock_code=code)


async def unlock(session: AsyncSession, card: Card, *, actor: str) -> Card:
    if card.status != "LOCKED":
        raise CardcoreError("INVALID_CARD_TRANSITION", f"The card is {card.status}, not LOCKED.")
    reason = LOCK_REASONS.get(card.lock_reason or 0)
    if reason is not None and reason.irreversible:
        raise CardcoreError("LOCK_IRREVERSIBLE", f"Lock {reason.code} ({reason.name}) is final.")
    return await transition(
        session, card, card.previous_status or "ACTIVE", actor=actor, reason="unlocked"
    )


async def freeze(session: AsyncSession, card: Card, *, actor: str) -> Card:
    if card.status == "FROZEN":
        return card
    if card.status == "LOCKED":
        raise CardcoreError("INVALID_CARD_TRANSITION", "The card is LOCKED; it cannot be frozen.")
    return await transition(session, card, "FROZEN", actor=actor, reason="frozen")


async def unfreeze(session: AsyncSession, card: Card, *, actor: str) -> Card:
    if card.status != "FROZEN":
        raise CardcoreError("INVALID_CARD_TRANSITION", f"The card is {card.status}, not FROZEN.")
    return await transition(
        session, card, card.previous_status or "ACTIVE", actor=actor, reason="unfrozen"
    )


def failure_action_code(card: Card) -> str | None:
    """What a locked card answers at a POS or ATM (seed 003), for the authorization engine."""
    reason = LOCK_REASONS.get(card.lock_reason or 0) if card.status == "LOCKED" else None
    return reason.failure_action_code if reason else None


def expired(card: Card, now: datetime) -> bool:
    """A card is valid through the last day of its expiry month."""
    return (now.year, now.month) > (card.expiry_year, card.expiry_month)


@job("cards.expire", every=timedelta(hours=24))
async def expire_cards(session: AsyncSession, payload: dict[str, Any], context: JobContext) -> None:
    now = datetime.now(UTC)
    months = now.year * 12 + now.month
    candidates = await session.scalars(
        select(Card)
        .where(
            Card.status.in_(LIVE),
            (Card.expiry_year * 12 + Card.expiry_month) < months,
        )
        .with_for_update(skip_locked=True)
        .limit(1000)
    )
    for card in candidates:
        await transition(session, card, "EXPIRED", actor="system", reason="expiry month passed")
