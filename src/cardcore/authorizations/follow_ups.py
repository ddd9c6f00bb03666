"""What follows an authorization: its clearing, reversal, incremental authorizations, linked
refunds, and the expiry of a hold the network never cleared.

Each costs what an authorization costs: one read (the network key checked, the authorization
found, then its first answer to these network ids, the balance's account, the pending transfers
of its hold and of its held fees — `card_follow_up_context`) and one write
(`card_follow_up_write`), between BEGIN and COMMIT with the authorization locked by the read; or,
on the lean path's own pool, each a transaction of its own, the write recording the decision only
if the authorization's row is as read (every follow-up that moves money changes it). In between,
Python decides what moves: the ledger transfers go into one `ledger.Linked`, which the write
records all or none (a ruled account that cannot pay refuses the whole message and is named),
with the authorization's new state, its fee lines, the network message and the outbox events.

A retransmission finds its first answer and gets it back; the same ids on a different message
are refused (see messages.py).
"""

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.authorizations import store
from cardcore.authorizations.events import AuthorizationExpired, AuthorizationUpdated
from cardcore.authorizations.holds import forget_holds, hold_ids, legs_of, set_holds
from cardcore.authorizations.messages import (
    PLAIN_EVENT,
    PLAIN_MESSAGE,
    NetworkKeyRefused,
    response_of,
    reused_ids,
)
from cardcore.cards.response_codes import ResponseCode
from cardcore.db import driver_connection
from cardcore.fees import transaction_fees
from cardcore.kit.errors import CardcoreError, NotFound
from cardcore.kit.outbox import EventData, new_event
from cardcore.kit.rows import Facts
from cardcore.ledger import service as ledger
from cardcore.models import TransactionStatus
from cardcore.models.ids import is_valid, new_id

# How far a clearing may exceed its authorization, in basis points, by MCC: tips at restaurants,
# bars, fast food, taxis and salons; hotels and car rentals add incidentals. Anything else clears
# at most what was held. Programs override or extend it (`programs.clearing_tolerances`).
CLEARING_TOLERANCES = {
    "5812": 2_000,
    "5813": 2_000,
    "5814": 2_000,
    "4121": 2_000,
    "7230": 2_000,
    "7011": 1_500,
    "7512": 1_500,
}
# The state an authorization must be in for each kind of message.
_EXPECTED = {
    "reversal": TransactionStatus.PENDING,
    "clearing": TransactionStatus.PENDING,
    "increment": TransactionStatus.PENDING,
    "expiry": TransactionStatus.PENDING,
    "refund": TransactionStatus.SETTLED,
}


@dataclass
class _Outcome:
    """What a follow-up decided: the money it moves, and what its message says."""

    moves: ledger.Linked = field(default_factory=ledger.Linked)
    amount: int = 0
    ledger_transfer_id: str | None = None
    changed: bool = True
    events: list[EventData] = field(default_factory=list)


async def follow_up(
    session: AsyncSession,
    *,
    kind: str,
    program_id: str,
    transaction_id: str,
    network_key: str,
    amount: int | None,
    key_id: str | None = None,
    touch_after: timedelta = timedelta(seconds=60),
    connection: Any = None,
    unlocked: bool = False,
) -> dict[str, Any]:
    """Handle a follow-up message of `kind` (reversal, clearing, increment, refund, expiry) and
    answer it. `key_id`, `connection`, `unlocked`: as for `service.authorize` — unlocked, the
    read does not lock the authorization and the write records the decision only if its row is
    as read (a linked refund, whose limit is the refunds recorded so far, always locks)."""
    if connection is None:
        connection = await driver_connection(session)
    unlocked = unlocked and kind != "refund"
    return await store.decided_afresh(
        functools.partial(
            _follow_up,
            session,
            connection,
            kind=kind,
            program_id=program_id,
            transaction_id=transaction_id,
            network_key=network_key,
            amount=amount,
            key_id=key_id,
            touch_after=touch_after,
            unlocked=unlocked,
        ),
        unlocked,
    )


async def _follow_up(
    session: AsyncSession,
    connection: Any,
    *,
    kind: str,
    program_id: str,
    transaction_id: str,
    network_key: str,
    amount: int | None,
    key_id: str | None,
    touch_after: timedelta,
    unlocked: bool,
) -> dict[str, Any]:
    found = await store.read_follow_up(
        connection,
        key_id=key_id,
        program_id=program_id,
        transaction_id=transaction_id if is_valid("txn", transaction_id) else "",
        network_key=network_key,
        refunds=kind == "refund",
        touch_after=touch_after,
        lock=not unlocked,
    )
    if not found.key_ok:
        raise NetworkKeyRefused
    row = found.transaction
    if row is None:
        raise NotFound("authorization")
    if found.previous is not None:
        if found.previous_transaction != row.id or amount not in (None, found.previous_amount):
            raise reused_ids()
        return found.previous
    if row.status != _EXPECTED[kind]:
        code = (
            "TRANSFER_NOT_PENDING"
            if _EXPECTED[kind] == TransactionStatus.PENDING
            else "TRANSACTION_NOT_SETTLED"
        )
        raise CardcoreError(code, f"The authorization is {row.status}.")

    before = Facts(dict(row.__dict__))
    if kind == "clearing":
        outcome = _clearing(found, amount)
    elif kind == "reversal":
        outcome = _reversal(found, amount)
    elif kind == "increment":
        assert amount is not None
        outcome = _increment(found, amount)
    elif kind == "refund":
        assert amount is not None
        outcome = await _refund(session, found, amount)
    else:
        outcome = _expiry(found)
    written = await _write(connection, found.transaction, found, kind, network_key, outcome)
    if written.refused_account is None:
        return written.response
    refused = (
        "PARTNER_DEPOSIT_INSUFFICIENT"
        if written.refused_account == row.deposit_account_id
        else "INSUFFICIENT_FUNDS"
    )
    if kind == "clearing":
        raise CardcoreError(
            "INSUFFICIENT_FUNDS",
            f"The clearing exceeds the hold and the rest cannot be charged ({refused});"
            " the hold stands as it was.",
        )
    if kind != "increment":  # only a larger hold, or a clearing above it, takes money
        raise CardcoreError("INTERNAL_ERROR")
    # Nothing moved: the increment is declined, and the authorization stays as it was read.
    declined = _Outcome(amount=amount or 0, changed=False)
    declined.events.append(_updated(before, "increment", amount or 0))
    written = await _write(
        connection,
        before,
        found,
        kind,
        network_key,
        declined,
        decline=(ResponseCode.INSUFFICIENT_FUNDS, refused),
    )
    return written.response


@dataclass(slots=True)
class _Written:
    refused_account: str | None
    response: dict[str, Any]


async def _write(
    connection: Any,
    row: Any,
    found: store.FollowUpContext,
    kind: str,
    network_key: str,
    outcome: _Outcome,
    decline: tuple[str, str] | None = None,
) -> _Written:
    """Record the follow-up about `row`: its money, the authorization's new state and fee lines
    (when `outcome.changed`), the message with its answer (the available balance filled in by
    the write), and the events."""
    response = response_of(row, None)
    response["approved"] = decline is None
    if decline is not None:
        response["response_code"], response["decline_reason"] = decline
    written = await store.write_follow_up(
        connection,
        transaction=row,
        changed=outcome.changed,
        fee_lines=found.held_fees if outcome.changed else (),
        message=PLAIN_MESSAGE(
            id=new_id("tev"),
            program_id=row.program_id,
            transaction_id=row.id,
            kind=kind,
            network_key=network_key,
            amount=outcome.amount,
            response=response,
            ledger_transfer_id=outcome.ledger_transfer_id,
        ),
        events=[
            new_event(
                make=PLAIN_EVENT,
                program_id=row.program_id,
                object_id=getattr(data, "fee_id", row.id),
                data=data,
            )
            for data in outcome.events
        ],
        moves=outcome.moves,
        user_account=found.user_account,
        version=found.transaction_version,
    )
    response["available_balance"] = written.available
    return _Written(written.refused_account, response)


def _updated(row: Any, kind: str, amount: int) -> AuthorizationUpdated:
    return AuthorizationUpdated(
        transaction_id=row.id,
        kind=kind,
        status=row.status,
        amount=amount,
        held_amount=row.held_amount,
    )


def _hold_transfers(found: store.FollowUpContext) -> list[Any]:
    """The authorization's pending transfers, deposit leg first, as read."""
    return [found.holds[h] for h in hold_ids(found.transaction)]


def _rehold(
    moves: ledger.Linked,
    found: store.FollowUpContext,
    amount: int,
    *,
    reducing: bool,
    code: str = "card_reversal",
    kind: str = "void",
) -> str:
    """Release the current hold (and its fees') and, when something is still held, hold that
    amount anew with its fees repriced (a pending transfer resolves once, so a partial release
    is a void plus a smaller hold). Returns the user leg's new hold, or its release when nothing
    stays held."""
    row = found.transaction
    holds = _hold_transfers(found)
    released = ""
    for held in holds:
        released = moves.resolve(held, kind=kind, code=code).id
    fee_holds = [found.holds[f.ledger_transfer_id] for f in found.held_fees]
    transaction_fees.release(moves, found.held_fees, found.holds, kind=kind)
    if amount == 0:
        forget_holds(row)
        return released
    allowance = 0
    if reducing:
        # A smaller hold than the one it replaces leaves the balance no worse off, even when a
        # fee the program lets go below zero took it there in between: allow what it was.
        available = found.available + sum(
            h.amount for h in (*holds, *fee_holds) if h.debit_account_id == found.user_account
        )
        needed = amount + sum(transaction_fees.reprice(fee, amount) for fee in found.held_fees)
        allowance = max(0, needed - available)
    new_holds = [
        moves.transfer(
            program_id=row.program_id,
            debit_account_id=held.debit_account_id,
            credit_account_id=held.credit_account_id,
            amount=amount,
            currency=row.billing_currency,
            code="card_authorization",
            pending=True,
            details={"transaction_id": row.id},
            overdraft_limit=allowance if held is holds[-1] else 0,
        )
        for held in holds
    ]
    transaction_fees.hold_anew(
        moves, found.held_fees, found.holds, found.user_account, amount, overdraft_limit=allowance
    )
    set_holds(row, new_holds)
    assert row.hold_transfer_id is not None
    return str(row.hold_transfer_id)


def _reversal(found: store.FollowUpContext, amount: int | None) -> _Outcome:
    row = found.transaction
    release = row.held_amount if amount is None else amount
    if not 0 < release <= row.held_amount:
        raise CardcoreError("VALIDATION_ERROR", "A reversal releases at most what is held.")
    row.held_amount -= release
    outcome = _Outcome(amount=release)
    outcome.ledger_transfer_id = _rehold(outcome.moves, found, row.held_amount, reducing=True)
    if row.held_amount == 0:
        row.status = TransactionStatus.REVERSED
    outcome.events.append(_updated(row, "reversal", release))
    return outcome


def clearing_tolerance(row: Any, overrides: dict[str, int] | None) -> int:
    """How much more than its hold this authorization may clear for (minor units, rounded down)."""
    mcc = str(row.merchant.get("mcc", ""))
    bps = {**CLEARING_TOLERANCES, **(overrides or {})}.get(mcc, 0)
    return int(row.held_amount * int(bps) // 10_000)


def _clearing(found: store.FollowUpContext, amount: int | None) -> _Outcome:
    """Settle an authorization: post what was held, or less (the rest is released), or more
    within the merchant category's tolerance (the excess is charged on top, if it can be)."""
    row = found.transaction
    held = row.held_amount
    amount = held if amount is None else amount
    if amount <= 0:
        raise CardcoreError("VALIDATION_ERROR", "A clearing posts a positive amount.")
    if amount > held + clearing_tolerance(row, found.clearing_tolerances):
        raise CardcoreError("CLEARING_ABOVE_TOLERANCE")
    outcome = _Outcome(amount=amount)
    moves = outcome.moves
    holds = _hold_transfers(found)
    for pending in holds:
        outcome.ledger_transfer_id = moves.resolve(
            pending, kind="post", amount=min(amount, held), code="card_clearing"
        ).id
    if amount > held:
        for pending in holds:
            moves.transfer(
                program_id=row.program_id,
                debit_account_id=pending.debit_account_id,
                credit_account_id=pending.credit_account_id,
                amount=amount - held,
                currency=row.billing_currency,
                code="card_clearing",
                details={"transaction_id": row.id},
            )
    settled = transaction_fees.settle(
        moves, found.held_fees, found.holds, found.user_account, amount
    )
    outcome.events += transaction_fees.mark_settled(settled)
    forget_holds(row)
    row.status, row.settled_amount, row.held_amount = TransactionStatus.SETTLED, amount, 0
    outcome.events.append(_updated(row, "clearing", amount))
    return outcome


def _increment(found: store.FollowUpContext, amount: int) -> _Outcome:
    """Raise a hold by `amount` (in the balance's currency): the old hold voided and a larger one
    made, linked — if the balance cannot cover it, nothing changes and the increment is
    declined."""
    row = found.transaction
    outcome = _Outcome(amount=amount)
    outcome.ledger_transfer_id = _rehold(
        outcome.moves, found, row.held_amount + amount, reducing=False
    )
    row.held_amount += amount
    outcome.events.append(_updated(row, "increment", amount))
    return outcome


async def _refund(session: AsyncSession, found: store.FollowUpContext, amount: int) -> _Outcome:
    """Money back from the merchant to the card's balance, linked to the original purchase, and
    never more in all than the purchase settled for."""
    row = found.transaction
    if amount > row.settled_amount - (found.refunded or 0):
        raise CardcoreError(
            "VALIDATION_ERROR", "Refunds of a purchase add up to at most what it settled for."
        )
    outcome = _Outcome(amount=amount, changed=False)
    for debit, credit in (await legs_of(session, row, found.user_account)).reversed().pairs:
        outcome.ledger_transfer_id = outcome.moves.transfer(
            program_id=row.program_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            currency=row.billing_currency,
            code="card_refund",
            details={"transaction_id": row.id},
        ).id
    outcome.events.append(_updated(row, "refund", amount))
    return outcome


def _expiry(found: store.FollowUpContext) -> _Outcome:
    row = found.transaction
    released = row.held_amount
    outcome = _Outcome(amount=released)
    outcome.ledger_transfer_id = _rehold(
        outcome.moves, found, 0, reducing=False, code="card_hold_expiry", kind="expire"
    )
    row.status, row.held_amount = TransactionStatus.EXPIRED, 0
    outcome.events.append(
        AuthorizationExpired(transaction_id=row.id, card_id=row.card_id, released_amount=released)
    )
    return outcome
