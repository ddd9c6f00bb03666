"""Fee lines, and charging them through the ledger: one-off fees at once, a fee that follows a
transaction with it (`fees/transaction_fees.py`); what a fee costs comes from the schedule in
effect (`fees/schedules.py`).

A fee is a ledger transfer from the balance to the program's `fee_revenue` account (code `fee`,
details naming the fee line and its type), and a fee line (`fees`) that says what caused it and
what became of it. The line's `key` names its cause (`CARD_ISSUANCE|card_…`,
`CARD_PERIODIC|card_…|2026-11`, `TRANSACTION|txn_…`), unique, so no cause is charged twice — a
retried request or a job run twice finds the line already there.

One-off fees (balance creation, card issuance and replacement) and periodic fees are charged at
once; when the balance cannot pay, the program's policy decides: SKIP, RETRY daily for
`fee_retry_days`, or ALLOW_NEGATIVE — the same transfer, allowed by the ledger to take the
balance down to the program's limit for the currency (`ledger.transfer(overdraft_limit=…)`).
"""

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.fees import repository
from cardcore.fees.events import FeeCharged, FeeSkipped, FeeWaived
from cardcore.fees.schedules import Priced, price
from cardcore.fees.schemas import FeeRule
from cardcore.kit.outbox import record_event
from cardcore.ledger import service as ledger
from cardcore.models import (
    Balance,
    Card,
    Fee,
    FeeStatus,
    LedgerTransfer,
    Program,
    User,
)
from cardcore.models.ids import new_id

FEE_ACCOUNT = "fee_revenue"
FEE_CODE = "fee"
REFUND_CODE = "fee_refund"


# -- fee lines -----------------------------------------------------------------------------------


def event_fields(fee: Fee) -> dict[str, Any]:
    return {
        "fee_id": fee.id,
        "type": fee.type,
        "amount": fee.amount,
        "currency": fee.currency,
        "balance_id": fee.balance_id,
        "card_id": fee.card_id,
        "transaction_id": fee.transaction_id,
        "money_transfer_id": fee.money_transfer_id,
    }


class Charged(Protocol):
    """What a fee line needs of the balance it charges: a `Balance` row, or what the
    authorization path read of it."""

    @property
    def id(self) -> str: ...
    @property
    def program_id(self) -> str: ...
    @property
    def currency(self) -> str: ...


def new_line(priced: Priced, *, key: str, balance: Charged, **links: Any) -> Fee:
    return Fee(
        id=new_id("fee"),
        program_id=balance.program_id,
        key=key,
        type=priced.type,
        schedule_id=priced.schedule_id,
        balance_id=balance.id,
        status=FeeStatus.DUE,
        attempts=0,
        amount=priced.amount,
        refunded_amount=0,
        currency=priced.currency,
        basis_amount=priced.basis,
        rule=priced.rule.model_dump(mode="json", exclude_none=True),
        **links,
    )


async def claim_line(session: AsyncSession, fee: Fee) -> Fee | None:
    """Insert the line unless its cause already has one (then None: charged or being charged
    once already). A racing twin waits for the first one's commit, then finds it."""
    values = {c.key: getattr(fee, c.key) for c in Fee.__table__.columns if c.key in fee.__dict__}
    claimed = await session.scalar(
        insert(Fee).values(**values).on_conflict_do_nothing(index_elements=["key"]).returning(Fee)
    )
    return claimed


def transfer_details(fee: Fee) -> dict[str, Any]:
    return {"fee_id": fee.id, "fee_type": fee.type}


async def revenue_account(session: AsyncSession, program_id: str, currency: str) -> str:
    return await ledger.system_account_id(
        session, program_id=program_id, currency=currency, kind=FEE_ACCOUNT
    )


def charged(fee: Fee, transfer_id: str) -> FeeCharged:
    """Mark the fee CHARGED by `transfer_id`; the event that tells so, for the caller to record
    with the change."""
    fee.status, fee.ledger_transfer_id = FeeStatus.CHARGED, transfer_id
    fee.charged_at, fee.reason, fee.next_attempt_at = datetime.now(UTC), None, None
    return FeeCharged(**event_fields(fee), ledger_transfer_id=transfer_id)


def mark_charged(session: AsyncSession, fee: Fee, transfer_id: str) -> None:
    record_event(
        session, program_id=fee.program_id, object_id=fee.id, data=charged(fee, transfer_id)
    )


def mark_waived(session: AsyncSession, fee: Fee, waiver: dict[str, Any]) -> None:
    fee.status, fee.waiver = FeeStatus.WAIVED, waiver
    record_event(
        session,
        program_id=fee.program_id,
        object_id=fee.id,
        data=FeeWaived(**event_fields(fee), rule=str(waiver["rule"])),
    )


def mark_skipped(session: AsyncSession, fee: Fee, reason: str) -> None:
    fee.status, fee.reason, fee.next_attempt_at = FeeStatus.SKIPPED, reason, None
    record_event(
        session,
        program_id=fee.program_id,
        object_id=fee.id,
        data=FeeSkipped(**event_fields(fee), reason=reason),
    )


async def _pay(
    session: AsyncSession,
    fee: Fee,
    account_id: str,
    amount: int,
    *,
    overdraft_limit: int = 0,
) -> LedgerTransfer:
    """The ledger transfer of (part of) a fee, from the balance's account to fee revenue; raises
    ledger.Overdraft, having moved nothing, when the balance cannot pay."""
    return await ledger.transfer(
        session,
        **await _fee_transfer_fields(session, fee, account_id, amount),
        overdraft_limit=overdraft_limit,
    )


async def _fee_transfer_fields(
    session: AsyncSession, fee: Fee, account_id: str, amount: int
) -> dict[str, Any]:
    return fee_transfer(
        fee, account_id, await revenue_account(session, fee.program_id, fee.currency), amount
    )


def fee_transfer(fee: Fee, account_id: str, revenue_id: str, amount: int) -> dict[str, Any]:
    """The fields of (part of) a fee's transfer from the balance's account to fee revenue."""
    return {
        "program_id": fee.program_id,
        "debit_account_id": account_id,
        "credit_account_id": revenue_id,
        "amount": amount,
        "currency": fee.currency,
        "code": FEE_CODE,
        "details": transfer_details(fee),
    }


async def hold_linked(
    session: AsyncSession, moves: ledger.Linked, fees: list[Fee], account_id: str
) -> None:
    """Hold each fee with its transaction, linked with the transaction's own transfers (recorded
    all together, or none when the balance cannot pay): each fee HELD by its transfer."""
    for fee in fees:
        held = moves.transfer(
            **await _fee_transfer_fields(session, fee, account_id, fee.amount), pending=True
        )
        fee.status, fee.ledger_transfer_id = FeeStatus.HELD, held.id


async def take(
    session: AsyncSession, fee: Fee, account_id: str, *, overdraft_limit: int = 0
) -> str | None:
    """Move the fee now; the transfer id, or None (nothing moved) if the balance cannot pay."""
    try:
        moved = await _pay(session, fee, account_id, fee.amount, overdraft_limit=overdraft_limit)
    except ledger.Overdraft:
        return None
    return moved.id


async def charge(
    session: AsyncSession,
    fee: Fee,
    program: Program,
    account_id: str,
    *,
    now: datetime | None = None,
) -> Fee:
    """Charge a claimed line now, or follow the program's policy when the balance cannot pay.
    `now` is the job's clock (the retry job's), so the retry window is counted on it."""
    now = now or datetime.now(UTC)
    fee.attempts += 1
    transfer_id = await take(session, fee, account_id)
    if transfer_id is None and program.fee_shortfall_policy == "ALLOW_NEGATIVE":
        limit = int(program.fee_overdraft_limits.get(fee.currency, 0))
        transfer_id = await take(session, fee, account_id, overdraft_limit=limit)
        if transfer_id is None:
            mark_skipped(session, fee, "OVERDRAFT_LIMIT_REACHED")
            return fee
    if transfer_id is not None:
        mark_charged(session, fee, transfer_id)
    elif program.fee_shortfall_policy == "RETRY":
        if fee.retry_until is None:
            fee.retry_until = now + timedelta(days=program.fee_retry_days)
        # The last try is at the end of the window, not a day before it: a job that runs a
        # little after each retry's time would otherwise give up a day early.
        if now >= fee.retry_until:
            mark_skipped(session, fee, f"INSUFFICIENT_FUNDS after {fee.attempts} attempts")
        else:
            fee.status, fee.reason = FeeStatus.DUE, "INSUFFICIENT_FUNDS"
            fee.next_attempt_at = min(now + timedelta(days=1), fee.retry_until)
    else:
        mark_skipped(session, fee, "INSUFFICIENT_FUNDS")
    return fee


async def charge_now(
    session: AsyncSession,
    priced: Priced | None,
    *,
    key: str,
    balance: Balance,
    waiver: dict[str, Any] | None = None,
    now: datetime | None = None,
    **links: Any,
) -> Fee | None:
    """A one-off or periodic fee: claim its line, then waive or charge it (`now`: the caller's
    clock, for the retry window)."""
    if priced is None:
        return None
    fee = await claim_line(session, new_line(priced, key=key, balance=balance, **links))
    if fee is None:
        return None
    if waiver is not None:
        mark_waived(session, fee, waiver)
        return fee
    program = await session.get(Program, balance.program_id)
    assert program is not None
    return await charge(session, fee, program, balance.ledger_account_id, now=now)


async def retry_due(session: AsyncSession, *, now: datetime | None = None, limit: int = 500) -> int:
    """Try again the fees waiting for funds whose day has come (the RETRY policy)."""
    due = (
        await session.execute(
            select(Fee, Balance.ledger_account_id, Program)
            .join(Balance, Balance.id == Fee.balance_id)
            .join(Program, Program.id == Fee.program_id)
            .where(Fee.status == FeeStatus.DUE, Fee.next_attempt_at <= (now or datetime.now(UTC)))
            .order_by(Fee.next_attempt_at)
            .limit(limit)
            .with_for_update(of=Fee, skip_locked=True)
        )
    ).all()
    for fee, account_id, program in due:
        await charge(session, fee, program, account_id, now=now)
    return len(due)


async def collect_due(session: AsyncSession, balance: Balance) -> None:
    """Money arrived on the balance: take the fees it owes that are waiting for funds (RETRY),
    oldest first, as far as it goes — rather than at the next daily try."""
    due = await session.scalars(
        select(Fee)
        .where(Fee.balance_id == balance.id, Fee.status == FeeStatus.DUE)
        .order_by(Fee.id)
        .with_for_update(skip_locked=True)
    )
    for fee in due:
        transfer_id = await take(session, fee, balance.ledger_account_id)
        if transfer_id is None:
            return
        fee.attempts += 1
        mark_charged(session, fee, transfer_id)


# -- one-off fees --------------------------------------------------------------------------------


async def on_balance_created(session: AsyncSession, balance: Balance) -> Fee | None:
    priced = await price(
        session,
        program_id=balance.program_id,
        product_id=None,
        type_="BALANCE_CREATION",
        currency=balance.currency,
    )
    return await charge_now(session, priced, key=f"BALANCE_CREATION|{balance.id}", balance=balance)


async def _card_fee(session: AsyncSession, card: Card, type_: str) -> Fee | None:
    balance = await session.get(Balance, card.balance_id)
    assert balance is not None
    priced = await price(
        session,
        program_id=card.program_id,
        product_id=card.product_id,
        type_=type_,
        currency=balance.currency,
        form_factor=card.type,
    )
    waiver = None
    if priced is not None:
        waiver = await _issuance_waiver(session, card, priced.rule)
    return await charge_now(
        session, priced, key=f"{type_}|{card.id}", balance=balance, card_id=card.id, waiver=waiver
    )


async def _issuance_waiver(
    session: AsyncSession, card: Card, rule: FeeRule
) -> dict[str, Any] | None:
    for waiver in rule.waivers:
        if waiver.rule == "FIRST_CARDS_FREE" and card.user_id is not None:
            # The user's row lock makes two cards issued at once count one after the other, so
            # they cannot both be the last free one.
            await session.execute(select(User.id).where(User.id == card.user_id).with_for_update())
            earlier = await repository.earlier_cards(session, card)
            if earlier < waiver.count:
                return {"rule": waiver.rule, "count": waiver.count, "earlier_cards": earlier}
    return None


async def on_card_issued(session: AsyncSession, card: Card) -> Fee | None:
    return await _card_fee(session, card, "CARD_ISSUANCE")


async def on_card_replaced(session: AsyncSession, card: Card) -> Fee | None:
    return await _card_fee(session, card, "CARD_REPLACEMENT")
