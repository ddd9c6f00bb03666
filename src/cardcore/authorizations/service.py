"""The authorization engine: decide a card transaction, hold the money, and what follows.

An authorization runs in the request's one transaction: find the card (by id, or by PAN through
the vault's keyed hash), check expiry, CVV2 and PIN, apply the card's lifecycle and spend controls
(`cards/controls.evaluate`, the one function that decides), then hold the amount on the card's
balance with a pending ledger transfer — which the database refuses if it would overdraw, so two
authorizations racing for the last euro cannot both win. Declines are transactions too.

Every network message carries its network ids; they are unique, so a retransmission returns the
first answer and never holds twice.
"""

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.authorizations.events import AuthorizationDecided, AuthorizationUpdated
from cardcore.cards import controls, lifecycle
from cardcore.cards.service import CardServices, card_cvv2, expiry_yymm, pin_matches
from cardcore.kit.errors import CardcoreError, NotFound
from cardcore.kit.ids import is_valid
from cardcore.kit.jobs import JobContext, job
from cardcore.kit.money import currency_exponent
from cardcore.kit.outbox import record_event
from cardcore.ledger import service as ledger
from cardcore.models import (
    Balance,
    Card,
    CardTransaction,
    CardTransactionEvent,
    FxRate,
    Program,
)

PIN_TRIES = 3
NETWORK_ACCOUNT = "card_network"


async def convert(
    session: AsyncSession, program: Program, amount: int, source: str, target: str
) -> int | None:
    """`amount` (minor units of `source`) in minor units of `target`, with the program's markup,
    rounded half up to the target's minor unit; None when there is no rate."""
    if source == target:
        return amount
    rate = await session.scalar(
        select(FxRate.rate).where(
            FxRate.program_id == program.id, FxRate.base == source, FxRate.quote == target
        )
    )
    if rate is None:
        return None
    source_exp, target_exp = currency_exponent(source), currency_exponent(target)
    assert source_exp is not None
    assert target_exp is not None
    major = Decimal(amount) / (Decimal(10) ** source_exp)
    billed = major * Decimal(rate) * (1 + Decimal(program.fx_markup_bps) / Decimal(10_000))
    return int((billed * (Decimal(10) ** target_exp)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class AuthorizationRequest:
    amount: int
    currency: str
    channel: str
    entry_mode: str
    merchant: dict[str, Any]
    network_key: str
    card_id: str | None = None
    pan: str | None = None
    expiry: str | None = None  # YYMM
    cvv2: str | None = None
    pin: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def _stored(session: AsyncSession, network_key: str) -> CardTransactionEvent | None:
    return await session.scalar(
        select(CardTransactionEvent).where(CardTransactionEvent.network_key == network_key)
    )


async def _find_card(
    session: AsyncSession, services: CardServices, program_id: str, request: AuthorizationRequest
) -> Card:
    card = None
    if request.card_id is not None and is_valid("card", request.card_id):
        card = await session.scalar(
            select(Card)
            .where(Card.id == request.card_id, Card.program_id == program_id)
            .with_for_update()
        )
    elif request.pan is not None:
        card = await session.scalar(
            select(Card)
            .where(
                Card.program_id == program_id,
                Card.pan_hash == services.vault.lookup_hash(request.pan),
                Card.replaced_by.is_(None),
            )
            .with_for_update()
        )
    if card is None:
        raise NotFound("card")
    return card


def _response(transaction: CardTransaction, available: int | None) -> dict[str, Any]:
    return {
        "authorization_id": transaction.id,
        "approved": transaction.status == "PENDING",
        "response_code": transaction.response_code,
        "authorization_code": transaction.authorization_code,
        "decline_reason": transaction.decline_reason,
        "held_amount": transaction.held_amount,
        "currency": transaction.billing_currency or transaction.currency,
        "available_balance": available,
    }


async def authorize(
    session: AsyncSession,
    services: CardServices,
    *,
    program_id: str,
    request: AuthorizationRequest,
) -> dict[str, Any]:
    card = await _find_card(session, services, program_id, request)
    # Looked up under the card's lock: a retransmission racing its original waits for it and
    # then gets its answer.
    if (previous := await _stored(session, request.network_key)) is not None:
        return previous.response
    program = await session.get(Program, program_id)
    balance = await session.get(Balance, card.balance_id)
    assert program is not None
    assert balance is not None
    now = datetime.now(UTC)
    billing = await convert(session, program, request.amount, request.currency, balance.currency)
    transaction = controls.Transaction(
        amount=billing if billing is not None else request.amount,
        currency=balance.currency,
        channel=request.channel,
        entry_mode=request.entry_mode,
        mcc=str(request.merchant.get("mcc", "0000")),
        country=str(request.merchant.get("country", "")),
    )

    decision = controls.evaluate(
        card,
        transaction,
        program=program,
        spent=await controls.spent_so_far(session, card, program, now),
        now=now,
    )
    pan = None
    if decision.approved and request.cvv2 is not None:
        pan = await services.vault.decrypt(session, card)
    if decision.approved and request.expiry is not None and request.expiry != expiry_yymm(card):
        decision = controls.Decision.decline("54", "EXPIRY_MISMATCH")
    if (
        decision.approved
        and request.cvv2 is not None
        and request.cvv2 != card_cvv2(services, card, pan or "")
    ):
        decision = controls.Decision.decline("N7", "CVV2_MISMATCH")
    if decision.approved and request.pin is not None:
        if pin_matches(services, card, request.pin):
            card.pin_failures = 0
        else:
            card.pin_failures += 1
            if card.pin_failures >= PIN_TRIES:
                await lifecycle.lock(session, card, 6, actor="network")
                decision = controls.Decision.decline("75", "PIN_TRIES_EXCEEDED")
            else:
                decision = controls.Decision.decline("55", "WRONG_PIN")
    if decision.approved and billing is None:
        decision = controls.Decision.decline("12", "NO_FX_RATE")

    row = CardTransaction(
        program_id=program_id,
        card_id=card.id,
        balance_id=balance.id,
        user_id=card.user_id,
        status="DECLINED",
        amount=request.amount,
        currency=request.currency,
        channel=request.channel,
        entry_mode=request.entry_mode,
        merchant=request.merchant,
        response_code=decision.response_code,
        decline_reason=decision.rule,
        billing_amount=transaction.amount,
        billing_currency=balance.currency,
    )
    session.add(row)
    await session.flush()
    hold_id = None
    if decision.approved:
        network = await ledger.system_account(
            session, program_id=program_id, currency=balance.currency, kind=NETWORK_ACCOUNT
        )
        try:
            hold = await ledger.transfer(
                session,
                program_id=program_id,
                debit_account_id=balance.ledger_account_id,
                credit_account_id=network.id,
                amount=transaction.amount,
                currency=balance.currency,
                code="card_authorization",
                pending=True,
                details={"transaction_id": row.id},
            )
        except ledger.Overdraft:
            row.response_code, row.decline_reason = "51", "INSUFFICIENT_FUNDS"
        else:
            hold_id = hold.id
            row.status = "PENDING"
            row.response_code = "00"
            row.held_amount = transaction.amount
            row.hold_transfer_id = hold.id
            row.authorization_code = f"{secrets.randbelow(10**6):06d}"
            await controls.record_spend(session, card, program, transaction, now)
    available = (await ledger.totals(session, balance.ledger_account_id)).available
    response = _response(row, available)
    session.add(
        CardTransactionEvent(
            program_id=program_id,
            transaction_id=row.id,
            kind="authorization",
            network_key=request.network_key,
            amount=request.amount,
            response=response,
            ledger_transfer_id=hold_id,
        )
    )
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        # The same message raced in on another connection and won: its answer stands.
        raise CardcoreError(
            "DUPLICATE_REQUEST_ID", "This network message is being processed."
        ) from exc
    record_event(
        session,
        program_id=program_id,
        object_id=row.id,
        data=AuthorizationDecided(
            transaction_id=row.id,
            card_id=card.id,
            approved=response["approved"],
            response_code=row.response_code,
            decline_reason=row.decline_reason,
            amount=row.amount,
            currency=row.currency,
        ),
    )
    return response


async def _follow_up(
    session: AsyncSession, program_id: str, transaction_id: str, network_key: str, status: str
) -> tuple[CardTransaction, dict[str, Any] | None]:
    """Lock the authorization a follow-up message is about, then look for the message's first
    answer: checked under the lock, so a retransmission racing its original gets the answer
    instead of a conflict. Without one, the authorization must be in `status`."""
    row = None
    if is_valid("txn", transaction_id):
        row = await session.scalar(
            select(CardTransaction)
            .where(CardTransaction.id == transaction_id, CardTransaction.program_id == program_id)
            .with_for_update()
        )
    if row is None:
        raise NotFound("authorization")
    if (previous := await _stored(session, network_key)) is not None:
        return row, previous.response
    if row.status != status:
        raise CardcoreError("TRANSFER_NOT_PENDING", f"The authorization is {row.status}.")
    return row, None


async def _after(
    session: AsyncSession,
    row: CardTransaction,
    *,
    kind: str,
    network_key: str,
    amount: int,
    ledger_transfer_id: str | None,
    decline: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Record a follow-up message and its answer (stored as sent, for retransmissions)."""
    balance = await session.get(Balance, row.balance_id)
    assert balance is not None
    response = _response(row, (await ledger.totals(session, balance.ledger_account_id)).available)
    response["approved"] = decline is None
    if decline is not None:
        response["response_code"], response["decline_reason"] = decline
    session.add(
        CardTransactionEvent(
            program_id=row.program_id,
            transaction_id=row.id,
            kind=kind,
            network_key=network_key,
            amount=amount,
            response=response,
            ledger_transfer_id=ledger_transfer_id,
        )
    )
    await session.flush()
    record_event(
        session,
        program_id=row.program_id,
        object_id=row.id,
        data=AuthorizationUpdated(
            transaction_id=row.id,
            kind=kind,
            status=row.status,
            amount=amount,
            held_amount=row.held_amount,
        ),
    )
    return response


async def _rehold(session: AsyncSession, row: CardTransaction, amount: int) -> str | None:
    """Release the current hold and, when something is still held, hold that amount anew (a
    pending transfer resolves once, so a partial release is a void plus a smaller hold)."""
    assert row.hold_transfer_id is not None
    old = await ledger.resolve(session, row.hold_transfer_id, kind="void", code="card_reversal")
    if amount == 0:
        row.hold_transfer_id = None
        return old.id
    hold = await ledger.transfer(
        session,
        program_id=row.program_id,
        debit_account_id=old.debit_account_id,
        credit_account_id=old.credit_account_id,
        amount=amount,
        currency=old.currency,
        code="card_authorization",
        pending=True,
        details={"transaction_id": row.id},
    )
    row.hold_transfer_id = hold.id
    return hold.id


async def reverse(
    session: AsyncSession,
    *,
    program_id: str,
    transaction_id: str,
    amount: int | None,
    network_key: str,
) -> dict[str, Any]:
    row, previous = await _follow_up(session, program_id, transaction_id, network_key, "PENDING")
    if previous is not None:
        return previous
    release = row.held_amount if amount is None else amount
    if not 0 < release <= row.held_amount:
        raise CardcoreError("VALIDATION_ERROR", "A reversal releases at most what is held.")
    row.held_amount -= release
    transfer_id = await _rehold(session, row, row.held_amount)
    if row.held_amount == 0:
        row.status = "REVERSED"
    return await _after(
        session,
        row,
        kind="reversal",
        network_key=network_key,
        amount=release,
        ledger_transfer_id=transfer_id,
    )


async def clear(
    session: AsyncSession, *, program_id: str, transaction_id: str, amount: int, network_key: str
) -> dict[str, Any]:
    """Settle an authorization: post up to what is held; anything not posted is released."""
    row, previous = await _follow_up(session, program_id, transaction_id, network_key, "PENDING")
    if previous is not None:
        return previous
    if not 0 < amount <= row.held_amount:
        raise CardcoreError("VALIDATION_ERROR", "A clearing posts at most what is held.")
    posted = await ledger.resolve(
        session, row.hold_transfer_id, kind="post", amount=amount, code="card_clearing"
    )
    row.status, row.settled_amount, row.held_amount = "SETTLED", amount, 0
    return await _after(
        session,
        row,
        kind="clearing",
        network_key=network_key,
        amount=amount,
        ledger_transfer_id=posted.id,
    )


async def increment(
    session: AsyncSession, *, program_id: str, transaction_id: str, amount: int, network_key: str
) -> dict[str, Any]:
    """Raise a hold by `amount` (in the balance's currency). The old hold is voided and a larger
    one made inside one savepoint: if the balance cannot cover it, nothing changes."""
    row, previous = await _follow_up(session, program_id, transaction_id, network_key, "PENDING")
    if previous is not None:
        return previous
    try:
        async with session.begin_nested():
            transfer_id = await _rehold(session, row, row.held_amount + amount)
    except ledger.Overdraft:
        await session.refresh(row)
        return await _after(
            session,
            row,
            kind="increment",
            network_key=network_key,
            amount=amount,
            ledger_transfer_id=None,
            decline=("51", "INSUFFICIENT_FUNDS"),
        )
    row.held_amount += amount
    return await _after(
        session,
        row,
        kind="increment",
        network_key=network_key,
        amount=amount,
        ledger_transfer_id=transfer_id,
    )


async def refund(
    session: AsyncSession, *, program_id: str, transaction_id: str, amount: int, network_key: str
) -> dict[str, Any]:
    """Money back from the merchant to the card's balance, linked to the original purchase."""
    row, previous = await _follow_up(session, program_id, transaction_id, network_key, "SETTLED")
    if previous is not None:
        return previous
    balance = await session.get(Balance, row.balance_id)
    assert balance is not None
    network = await ledger.system_account(
        session, program_id=program_id, currency=balance.currency, kind=NETWORK_ACCOUNT
    )
    moved = await ledger.transfer(
        session,
        program_id=program_id,
        debit_account_id=network.id,
        credit_account_id=balance.ledger_account_id,
        amount=amount,
        currency=balance.currency,
        code="card_refund",
        details={"transaction_id": row.id},
    )
    return await _after(
        session,
        row,
        kind="refund",
        network_key=network_key,
        amount=amount,
        ledger_transfer_id=moved.id,
    )


async def _expire(session: AsyncSession, row: CardTransaction) -> dict[str, Any]:
    assert row.hold_transfer_id is not None
    released = await ledger.resolve(
        session, row.hold_transfer_id, kind="expire", code="card_hold_expiry"
    )
    row.status, row.held_amount = "EXPIRED", 0
    return await _after(
        session,
        row,
        kind="expiry",
        network_key=f"expiry|{row.id}",
        amount=released.amount,
        ledger_transfer_id=released.id,
    )


async def expire_now(
    session: AsyncSession, *, program_id: str, transaction_id: str
) -> dict[str, Any]:
    row, previous = await _follow_up(
        session, program_id, transaction_id, f"expiry|{transaction_id}", "PENDING"
    )
    return previous if previous is not None else await _expire(session, row)


@job("authorizations.expire_holds", every=timedelta(hours=1))
async def expire_holds(session: AsyncSession, payload: dict[str, Any], context: JobContext) -> None:
    """Release holds the network never cleared, after the program's hold_expiry_days."""
    stale = await session.scalars(
        select(CardTransaction)
        .join(Program, Program.id == CardTransaction.program_id)
        .where(
            CardTransaction.status == "PENDING",
            CardTransaction.created_at
            < func.now() - func.make_interval(0, 0, 0, Program.hold_expiry_days),
        )
        .with_for_update(of=CardTransaction, skip_locked=True)
        .limit(500)
    )
    for row in stale:
        assert row.hold_transfer_id is not None
        released = await ledger.resolve(
            session, row.hold_transfer_id, kind="expire", code="card_hold_expiry"
        )
        row.status, row.held_amount = "EXPIRED", 0
        await _after(
            session,
            row,
            kind="expiry",
            network_key=f"expiry|{row.id}",
            amount=released.amount,
            ledger_transfer_id=released.id,
        )


async def balance_inquiry(
    session: AsyncSession,
    services: CardServices,
    *,
    program_id: str,
    card_id: str | None,
    pan: str | None,
) -> dict[str, Any]:
    """What the card can spend now. A card that could not authorize answers with its decline code
    and no balance, so an inquiry cannot probe a locked or closed card's money."""
    request = AuthorizationRequest(
        amount=0,
        currency="",
        channel="",
        entry_mode="",
        merchant={},
        network_key="",
        card_id=card_id,
        pan=pan,
    )
    card = await _find_card(session, services, program_id, request)
    balance = await session.get(Balance, card.balance_id)
    assert balance is not None
    status = controls.status_decision(card, datetime.now(UTC))
    if status is not None:
        return {
            "card_id": card.id,
            "response_code": status.response_code,
            "available_balance": None,
            "currency": balance.currency,
        }
    totals = await ledger.totals(session, balance.ledger_account_id)
    return {
        "card_id": card.id,
        "response_code": "00",
        "available_balance": totals.available,
        "currency": balance.currency,
    }
