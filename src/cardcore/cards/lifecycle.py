"""The card status machine, in one place.

    INACTIVE ─activate─▶ ACTIVE ◀─unfreeze/unlock─ FROZEN, LOCKED
    any live state ─freeze─▶ FROZEN, ─lock(code)─▶ LOCKED, ─close─▶ CLOSED, ─expiry job─▶ EXPIRED

CLOSED and EXPIRED are terminal. Unfreeze and unlock return a card to the state it had before
(ACTIVE, or INACTIVE for a physical card never activated). Locks carry the card schemes' reason
codes; codes 1, 2, 5 and 8 can never be unlocked. Every change writes `card.status_changed`.

A number reported lost, stolen or used in fraud (or locked 1 or 2 from outside) is compromised
for good (`compromised_pans`): every card carrying it is locked at once, and no card carrying it
may become ACTIVE, INACTIVE or FROZEN again, whatever route asks.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards.events import CardStatusChanged
from cardcore.cards.response_codes import ResponseCode
from cardcore.kit.errors import CardcoreError
from cardcore.kit.outbox import record_event
from cardcore.models import Card, CardStatus, CompromisedPan
from cardcore.models.cards import LIVE_STATUSES, TERMINAL_STATUSES

STATES = LIVE_STATUSES + TERMINAL_STATUSES

# Each state and those it may become; the names are checked against CardStatus on import.
TRANSITIONS: dict[CardStatus, frozenset[CardStatus]] = {
    CardStatus(state): frozenset(CardStatus(to) for to in allowed.split())
    for state, allowed in {
        "INACTIVE": "ACTIVE FROZEN LOCKED CLOSED EXPIRED",
        "ACTIVE": "FROZEN LOCKED CLOSED EXPIRED",
        "FROZEN": "ACTIVE INACTIVE LOCKED CLOSED EXPIRED",
        # LOCKED → LOCKED: a lock may be replaced by a graver one (pending query → stolen).
        "LOCKED": "ACTIVE INACTIVE LOCKED CLOSED EXPIRED",
        "CLOSED": "",
        "EXPIRED": "",
    }.items()
}


@dataclass(frozen=True)
class LockReason:
    code: int
    name: str
    failure_action_code: str
    irreversible: bool
    iso_response: ResponseCode


# The schemes' lock reasons with the ISO 8583 answer and the failure action code a terminal
# shows; code 11 has no failure action code of its own, and takes PIN tries' (1006).
LOCK_REASONS: dict[int, LockReason] = {
    reason.code: reason
    for reason in (
        LockReason(1, "CARD_LOST", "2008", True, ResponseCode.LOST_CARD),
        LockReason(2, "CARD_STOLEN", "2009", True, ResponseCode.STOLEN_CARD),
        LockReason(3, "PENDING_QUERY", "1000", False, ResponseCode.DO_NOT_HONOUR),
        LockReason(4, "CARD_CONSOLIDATION", "1016", False, ResponseCode.DO_NOT_HONOUR),
        LockReason(5, "CARD_INACTIVE", "1018", True, ResponseCode.DO_NOT_HONOUR),
        LockReason(6, "PIN_TRIES_EXCEEDED", "1006", False, ResponseCode.PIN_TRIES_EXCEEDED),
        LockReason(7, "SUSPECTED_FRAUD", "1002", False, ResponseCode.SUSPECTED_FRAUD),
        LockReason(8, "CARD_REPLACED", "1011", True, ResponseCode.DO_NOT_HONOUR),
        LockReason(
            11, "OFFLINE_PIN_ATTEMPTS_EXCEEDED", "1006", False, ResponseCode.PIN_TRIES_EXCEEDED
        ),
    )
}

# Why a number is compromised, and the lock that puts on every card carrying it.
COMPROMISE_LOCKS = {"LOST": 1, "STOLEN": 2, "FRAUD": 7}
# The locks that say, from outside, that the number left its holder's hands.
_COMPROMISING_LOCKS = {1: "LOST", 2: "STOLEN"}
# States from which a card can authorize, or get back to authorizing.
_CAN_COME_BACK = frozenset({CardStatus.ACTIVE, CardStatus.INACTIVE, CardStatus.FROZEN})
# A freeze or lock pauses a running card; an unfreeze or unlock returns it to where it was.
_RUNNING = (CardStatus.ACTIVE, CardStatus.INACTIVE)
_PAUSED = (CardStatus.FROZEN, CardStatus.LOCKED)
# The errors a transition may end in (the routes that make one document them).
TRANSITION_CODES = ("INVALID_CARD_TRANSITION", "LOCK_IRREVERSIBLE", "CARD_NUMBER_COMPROMISED")


def finally_locked(card: Card) -> bool:
    reason = LOCK_REASONS.get(card.lock_reason or 0)
    return card.status == CardStatus.LOCKED and reason is not None and reason.irreversible


async def compromised(session: AsyncSession, card: Card) -> bool:
    """Was this card's number ever reported lost, stolen or used in fraud?"""
    return bool(
        await session.scalar(
            select(
                exists().where(
                    CompromisedPan.network == card.network,
                    CompromisedPan.pan_hash == card.pan_hash,
                )
            )
        )
    )


async def carriers(session: AsyncSession, card: Card) -> list[Card]:
    """Every card carrying this card's number (itself, the cards it replaced with the same number,
    a virtual card it was made from), row-locked in id order. Taken before acting on a report or
    a lock that may compromise the number: the one order every multi-card lock follows, so two
    of them on one number wait for each other instead of deadlocking."""
    found = await session.scalars(
        select(Card)
        .where(Card.network == card.network, Card.pan_hash == card.pan_hash)
        .order_by(Card.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(found)


async def compromise(session: AsyncSession, card: Card, reason: str, *, actor: str) -> None:
    """The number is out of its holder's hands: recorded for good, and every card carrying it
    that could still authorize (a virtual card stays ACTIVE after its plastic is made) locked."""
    await session.execute(
        insert(CompromisedPan)
        .values(
            network=card.network,
            pan_hash=card.pan_hash,
            program_id=card.program_id,
            card_id=card.id,
            reason=reason,
        )
        .on_conflict_do_nothing()
    )
    for carrier in await carriers(session, card):
        if carrier.status in TERMINAL_STATUSES or finally_locked(carrier):
            continue
        if carrier.status == CardStatus.LOCKED and carrier.lock_reason == COMPROMISE_LOCKS[reason]:
            continue
        await transition(
            session, carrier, CardStatus.LOCKED, actor=actor, lock_code=COMPROMISE_LOCKS[reason]
        )


async def transition(
    session: AsyncSession,
    card: Card,
    to: CardStatus,
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
    # Checked here, under the caller's row lock, so no route can bring such a card back.
    if to in _CAN_COME_BACK and await compromised(session, card):
        raise CardcoreError("CARD_NUMBER_COMPROMISED")
    if to == CardStatus.LOCKED:
        if lock_code not in LOCK_REASONS:
            raise CardcoreError("VALIDATION_ERROR", f"Unknown lock reason code {lock_code}.")
        final = card.lock_reason in LOCK_REASONS and LOCK_REASONS[card.lock_reason].irreversible
        # Only "replaced" (8) may succeed another final lock: a lost card is then replaced.
        if current == CardStatus.LOCKED and final and lock_code != 8:
            raise CardcoreError("LOCK_IRREVERSIBLE", "An irreversible lock cannot be replaced.")
        card.lock_reason = lock_code
        reason = reason or LOCK_REASONS[lock_code].name
    if current in _RUNNING and to in _PAUSED:
        card.previous_status = current
    if to in _RUNNING and current in _PAUSED:
        card.lock_reason = None
    if to == CardStatus.ACTIVE and card.activated_at is None:
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
            lock_reason=card.lock_reason if to == CardStatus.LOCKED else None,
        ),
    )
    return card


async def lock(session: AsyncSession, card: Card, code: int, *, actor: str) -> Card:
    await transition(session, card, CardStatus.LOCKED, actor=actor, lock_code=code)
    if code in _COMPROMISING_LOCKS:
        await compromise(session, card, _COMPROMISING_LOCKS[code], actor=actor)
    return card


async def unlock(session: AsyncSession, card: Card, *, actor: str) -> Card:
    if card.status != CardStatus.LOCKED:
        raise CardcoreError("INVALID_CARD_TRANSITION", f"The card is {card.status}, not LOCKED.")
    reason = LOCK_REASONS.get(card.lock_reason or 0)
    if reason is not None and reason.irreversible:
        raise CardcoreError("LOCK_IRREVERSIBLE", f"Lock {reason.code} ({reason.name}) is final.")
    return await transition(
        session, card, card.previous_status or CardStatus.ACTIVE, actor=actor, reason="unlocked"
    )


async def freeze(session: AsyncSession, card: Card, *, actor: str) -> Card:
    if card.status == CardStatus.FROZEN:
        return card
    if card.status == CardStatus.LOCKED:
        raise CardcoreError("INVALID_CARD_TRANSITION", "The card is LOCKED; it cannot be frozen.")
    return await transition(session, card, CardStatus.FROZEN, actor=actor, reason="frozen")


async def unfreeze(session: AsyncSession, card: Card, *, actor: str) -> Card:
    if card.status != CardStatus.FROZEN:
        raise CardcoreError("INVALID_CARD_TRANSITION", f"The card is {card.status}, not FROZEN.")
    return await transition(
        session, card, card.previous_status or CardStatus.ACTIVE, actor=actor, reason="unfrozen"
    )


def failure_action_code(card: Card) -> str | None:
    """What a locked card answers at a POS or ATM (its failure action code), for the
    authorization engine."""
    reason = LOCK_REASONS.get(card.lock_reason or 0) if card.status == CardStatus.LOCKED else None
    return reason.failure_action_code if reason else None


class Expiring(Protocol):
    """What expiry needs of a card: a `Card` row, or the authorization path's read."""

    @property
    def expiry_month(self) -> int: ...
    @property
    def expiry_year(self) -> int: ...


def expired(card: Expiring, now: datetime) -> bool:
    """A card is valid through the last day of its expiry month."""
    return (now.year, now.month) > (card.expiry_year, card.expiry_month)
