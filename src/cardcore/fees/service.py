"""Fees: pricing from the schedule in effect, and charging through the ledger.

A fee is a ledger transfer from the balance to the program's `fee_revenue` account (code `fee`,
details naming the fee line and its type), and a fee line (`fees`) that says what caused it and
what became of it. The line's `key` names its cause (`CARD_ISSUANCE|card_…`,
`CARD_PERIODIC|card_…|2026-11`, `TRANSACTION|txn_…`), unique, so no cause is charged twice — a
retried request or a job run twice finds the line already there.

- One-off fees (balance creation, card issuance and replacement) and periodic fees are charged
  at once; when the balance cannot pay, the program's policy decides: SKIP, RETRY daily for
  `fee_retry_days`, or ALLOW_NEGATIVE — the same transfer, allowed by the ledger to take the
  balance down to the program's limit for the currency (`ledger.transfer(overdraft_limit=…)`).
- Fees of a transaction (card TRANSACTION and FX fees, IBAN TRANSFER fees) follow it: held
  with it (no funds for the fee, no authorization), posted when it settles, released when it is
  reversed, expires or fails.

Schedules: the program's version in effect at the time, with the card product's version (if
any) overriding rules of the same type, form factor, period and channel.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Row, bindparam, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.fees import repository
from cardcore.fees.events import FeeCharged, FeeRefunded, FeeSkipped, FeeWaived
from cardcore.fees.repository import ScheduleRepository
from cardcore.fees.schemas import FeeRule, FeeScheduleCreate
from cardcore.kit.errors import CardcoreError, validation_error
from cardcore.kit.outbox import record_event
from cardcore.ledger import service as ledger
from cardcore.models import (
    Balance,
    Card,
    CardTransaction,
    Fee,
    FeeRefund,
    FeeSchedule,
    FeeStatus,
    LedgerTransfer,
    Program,
    User,
)
from cardcore.models.ids import from_uuid, new_id, to_uuid

FEE_ACCOUNT = "fee_revenue"
FEE_CODE = "fee"
REFUND_CODE = "fee_refund"


# -- schedules -----------------------------------------------------------------------------------


async def create_schedule(
    session: AsyncSession, program_id: str, body: FeeScheduleCreate, actor: str | None
) -> FeeSchedule:
    """A new version of the program's (or a product's) schedule."""
    # Versions are numbered under the program's row lock: two at once cannot take one number.
    program = await session.get(Program, program_id, with_for_update=True)
    assert program is not None
    schedules = ScheduleRepository(session, program_id)
    if body.product_id is not None and not await schedules.names_a_product(body.product_id):
        raise validation_error("product_id", "NOT_FOUND", "No such product.")
    now = datetime.now(UTC)
    effective_from = body.effective_from or now
    if effective_from.tzinfo is None:
        raise validation_error("effective_from", "NO_TIME_ZONE", "Give a time zone offset.")
    if effective_from < now - timedelta(seconds=60):
        raise validation_error(
            "effective_from", "IN_THE_PAST", "A schedule cannot change fees retroactively."
        )
    for rule in body.fees:
        for currency in rule.prices:
            if currency not in program.currencies:
                raise validation_error(
                    "fees", "CURRENCY_NOT_ALLOWED", f"This program does not hold {currency}."
                )
    latest = await schedules.latest_version(body.product_id)
    schedule = FeeSchedule(
        program_id=program_id,
        product_id=body.product_id,
        version=latest + 1,
        effective_from=max(effective_from, now),
        fees=[rule.model_dump(mode="json", exclude_none=True) for rule in body.fees],
        created_by=actor,
    )
    session.add(schedule)
    await session.flush()
    return schedule


# A version never changes, so its parsed rules are kept by id for the life of the process.
_PARSED: dict[str, list[FeeRule]] = {}


def rules_of(schedule_id: str, fees: list[dict[str, Any]]) -> list[FeeRule]:
    parsed = _PARSED.get(schedule_id)
    if parsed is None:
        parsed = _PARSED[schedule_id] = [FeeRule.model_validate(f) for f in fees]
    return parsed


@dataclass(frozen=True, slots=True)
class Priced:
    """A fee as the schedule prices it."""

    type: str
    rule: FeeRule
    schedule_id: str
    amount: int
    currency: str
    basis: int | None


Versions = list[tuple[str, list[FeeRule]]]


# The versions in effect are chosen by `fee_versions_in_effect` in the database (migration
# 2026_12_03_authorization_functions), which the authorization path's one read calls too.
_IN_EFFECT = (
    text(
        "SELECT id, fees FROM fee_versions_in_effect(:program_id, :product_id, :at)"
        " ORDER BY product_id NULLS FIRST"
    )
    .bindparams(
        bindparam("program_id", type_=FeeSchedule.program_id.type),
        bindparam("product_id", type_=FeeSchedule.product_id.type),
    )
    .columns(id=FeeSchedule.id.type, fees=FeeSchedule.fees.type)
)


def parse_versions(value: list[Any] | None) -> Versions:
    """The versions as the authorization path's read returns them: [[id, fees], …], as JSON."""
    return [
        (schedule_id := from_uuid("fsc", uuid.UUID(raw_id)), rules_of(schedule_id, fees))
        for raw_id, fees in value or []
    ]


async def schedules_in_effect(
    session: AsyncSession, program_id: str, product_id: str | None, at: datetime
) -> Versions:
    """The program's version in effect at `at`, then the product's: (id, rules) each."""
    rows = await session.execute(
        _IN_EFFECT, {"program_id": program_id, "product_id": product_id, "at": at}
    )
    return [(row.id, rules_of(row.id, row.fees)) for row in rows]


def _matches(rule: FeeRule, type_: str, **narrowing: str | None) -> bool:
    if rule.type != type_:
        return False
    if rule.form_factor is not None and rule.form_factor != narrowing.get("form_factor"):
        return False
    return rule.period == narrowing.get("period") and rule.channel == narrowing.get("channel")


def pick_rule(
    versions: list[tuple[str, list[FeeRule]]], type_: str, **narrowing: str | None
) -> tuple[str, FeeRule] | None:
    """The rule pricing a fee: the product's over the program's, a form factor's own rule over
    the one for every card."""
    merged: dict[tuple[str, str | None, str | None, str | None], tuple[str, FeeRule]] = {}
    for schedule_id, rules in versions:  # the product's version comes last and overrides
        for rule in rules:
            merged[rule.identity] = (schedule_id, rule)
    found = [(s, r) for s, r in merged.values() if _matches(r, type_, **narrowing)]
    found.sort(key=lambda pair: pair[1].form_factor is None)
    return found[0] if found else None


def priced_from(
    versions: Versions, type_: str, currency: str, basis: int | None, **narrowing: str | None
) -> Priced | None:
    """The fee of `type_` in `currency` under `versions`, or None when there is none. A rule
    priced at 0 is None too: nothing to charge or waive."""
    picked = pick_rule(versions, type_, **narrowing)
    if picked is None:
        return None
    schedule_id, rule = picked
    price = rule.prices.get(currency)
    amount = price.fee_for(basis or 0) if price is not None else 0
    return Priced(rule.type, rule, schedule_id, amount, currency, basis) if amount > 0 else None


async def price(
    session: AsyncSession,
    *,
    program_id: str,
    product_id: str | None,
    type_: str,
    currency: str,
    basis: int | None = None,
    at: datetime | None = None,
    **narrowing: str | None,
) -> Priced | None:
    """`priced_from` the schedules in effect at `at` (now)."""
    versions = await schedules_in_effect(session, program_id, product_id, at or datetime.now(UTC))
    return priced_from(versions, type_, currency, basis, **narrowing)


# -- fee lines -----------------------------------------------------------------------------------


def _event_fields(fee: Fee) -> dict[str, Any]:
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


def _details(fee: Fee) -> dict[str, Any]:
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
    return FeeCharged(**_event_fields(fee), ledger_transfer_id=transfer_id)


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
        data=FeeWaived(**_event_fields(fee), rule=str(waiver["rule"])),
    )


def mark_skipped(session: AsyncSession, fee: Fee, reason: str) -> None:
    fee.status, fee.reason, fee.next_attempt_at = FeeStatus.SKIPPED, reason, None
    record_event(
        session,
        program_id=fee.program_id,
        object_id=fee.id,
        data=FeeSkipped(**_event_fields(fee), reason=reason),
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
    return _fee_transfer(
        fee, account_id, await revenue_account(session, fee.program_id, fee.currency), amount
    )


def _fee_transfer(fee: Fee, account_id: str, revenue_id: str, amount: int) -> dict[str, Any]:
    """The fields of (part of) a fee's transfer from the balance's account to fee revenue."""
    return {
        "program_id": fee.program_id,
        "debit_account_id": account_id,
        "credit_account_id": revenue_id,
        "amount": amount,
        "currency": fee.currency,
        "code": FEE_CODE,
        "details": _details(fee),
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


async def _take(
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
    transfer_id = await _take(session, fee, account_id)
    if transfer_id is None and program.fee_shortfall_policy == "ALLOW_NEGATIVE":
        limit = int(program.fee_overdraft_limits.get(fee.currency, 0))
        transfer_id = await _take(session, fee, account_id, overdraft_limit=limit)
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
        transfer_id = await _take(session, fee, balance.ledger_account_id)
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


# -- fees that follow a transaction --------------------------------------------------------------


async def transaction_fees(
    session: AsyncSession,
    row: CardTransaction,
    card: Card,
    balance: Charged,
    *,
    versions: Versions | None = None,
) -> list[Fee]:
    """The fee lines (not yet added) of a card transaction, on its amount in the balance's
    currency: its channel's TRANSACTION fee, and the FX fee when the merchant's currency is
    another. `versions`: the schedules in effect, when the caller has read them already."""
    if versions is None:
        versions = await schedules_in_effect(
            session, card.program_id, card.product_id, datetime.now(UTC)
        )
    wanted = [("TRANSACTION", {"channel": row.channel})]
    if row.currency != row.billing_currency:
        wanted.append(("FX", {}))
    lines = []
    for type_, narrowing in wanted:
        priced = priced_from(versions, type_, balance.currency, row.billing_amount, **narrowing)
        if priced is not None:
            lines.append(
                new_line(
                    priced,
                    key=f"{type_}|{row.id}",
                    balance=balance,
                    card_id=card.id,
                    transaction_id=row.id,
                )
            )
    return lines


async def charge_each(session: AsyncSession, fees: list[Fee], account_id: str) -> None:
    """Fees of a transaction that is already settled (a force post): each is taken now if the
    balance can pay it, else SKIPPED — the network has paid the merchant either way."""
    for fee in fees:
        fee.attempts += 1
        transfer_id = await _take(session, fee, account_id)
        if transfer_id is None:
            mark_skipped(session, fee, "INSUFFICIENT_FUNDS")
        else:
            mark_charged(session, fee, transfer_id)


async def held_for(session: AsyncSession, **link: str) -> list[Fee]:
    """The HELD fees of a transaction (`transaction_id=…` or `money_transfer_id=…`), locked."""
    ((column, value),) = link.items()
    return list(
        await session.scalars(
            select(Fee)
            .where(getattr(Fee, column) == value, Fee.status == FeeStatus.HELD)
            .order_by(Fee.id)
            .with_for_update()
        )
    )


def release(
    moves: ledger.Linked, fees: list[Fee], holds: Mapping[str, Any], *, kind: str = "void"
) -> None:
    """The transaction was reversed, expired or failed (or is held anew): the holds go back.
    `holds`: the fees' pending transfers by id, as read."""
    for fee in fees:
        assert fee.ledger_transfer_id is not None
        moves.resolve(holds[fee.ledger_transfer_id], kind=kind, code=FEE_CODE)
        fee.status = FeeStatus.RELEASED


def reprice(fee: Fee, basis: int) -> int:
    """The fee on a new amount, by the rule that priced it at first."""
    return FeeRule.model_validate(fee.rule).prices[fee.currency].fee_for(basis)


def hold_anew(
    moves: ledger.Linked,
    fees: list[Fee],
    holds: Mapping[str, Any],
    account_id: str,
    basis: int,
    *,
    overdraft_limit: int = 0,
) -> None:
    """Released fees of a transaction whose held amount changed (an increment, a partial
    reversal), held again as priced on the new amount, to the revenue account their first hold
    went to."""
    for fee in fees:
        assert fee.ledger_transfer_id is not None
        revenue_id = holds[fee.ledger_transfer_id].credit_account_id
        fee.amount, fee.basis_amount = reprice(fee, basis), basis
        if fee.amount > 0:
            held = moves.transfer(
                **_fee_transfer(fee, account_id, revenue_id, fee.amount),
                pending=True,
                overdraft_limit=overdraft_limit,
            )
            fee.status, fee.ledger_transfer_id = FeeStatus.HELD, held.id


@dataclass(frozen=True, slots=True)
class Settled:
    fee: Fee
    amount: int
    basis: int
    transfer_id: str


def settle(
    moves: ledger.Linked, fees: list[Fee], holds: Mapping[str, Any], account_id: str, basis: int
) -> list[Settled]:
    """The transaction settled for `basis`: post each fee as priced on it — from the hold, and
    beyond it (a clearing above its authorization) as a further charge. Moves money only: the
    caller, once the whole settlement has gone through, records it with `mark_settled`."""
    settled = []
    for fee in fees:
        assert fee.ledger_transfer_id is not None
        held = holds[fee.ledger_transfer_id]
        final = reprice(fee, basis)
        posted = moves.resolve(
            held, kind="post", amount=min(final, fee.amount), code=FEE_CODE, details=_details(fee)
        )
        if final > fee.amount:
            moves.transfer(
                **_fee_transfer(fee, account_id, held.credit_account_id, final - fee.amount)
            )
        settled.append(Settled(fee, final, basis, posted.id))
    return settled


def mark_settled(settled: list[Settled]) -> list[FeeCharged]:
    """Each settled fee CHARGED; the events to record with the change."""
    events = []
    for done in settled:
        done.fee.amount, done.fee.basis_amount = done.amount, done.basis
        events.append(charged(done.fee, done.transfer_id))
    return events


# -- refunds -------------------------------------------------------------------------------------


async def refund(
    session: AsyncSession, fee: Fee, *, amount: int | None, reason: str | None, actor: str
) -> FeeRefund:
    """Pay all or part of a charged fee back to its balance, from the fee revenue account."""
    refundable = fee.amount - fee.refunded_amount
    if fee.status != FeeStatus.CHARGED or refundable == 0:
        raise CardcoreError(
            "FEE_NOT_REFUNDABLE",
            f"The fee is {fee.status}." if refundable else "The fee is refunded in full.",
        )
    amount = refundable if amount is None else amount
    if not 0 < amount <= refundable:
        raise validation_error(
            "amount", "ABOVE_REFUNDABLE", f"At most {refundable} of this fee can be refunded."
        )
    balance = await session.get(Balance, fee.balance_id)
    assert balance is not None
    try:
        moved = await ledger.transfer(
            session,
            program_id=fee.program_id,
            debit_account_id=await revenue_account(session, fee.program_id, fee.currency),
            credit_account_id=balance.ledger_account_id,
            amount=amount,
            currency=fee.currency,
            code=REFUND_CODE,
            details=_details(fee),
        )
    except ledger.Overdraft as exc:  # the balance's rules never refuse a credit
        raise CardcoreError("INTERNAL_ERROR") from exc
    fee.refunded_amount += amount
    made = FeeRefund(
        id=new_id("frf"),
        program_id=fee.program_id,
        fee_id=fee.id,
        amount=amount,
        currency=fee.currency,
        reason=reason,
        refunded_by=actor,
        ledger_transfer_id=moved.id,
    )
    session.add(made)
    await session.flush()
    record_event(
        session,
        program_id=fee.program_id,
        object_id=fee.id,
        data=FeeRefunded(**_event_fields(fee), refund_id=made.id, refunded_amount=amount),
    )
    return made


# -- reporting -----------------------------------------------------------------------------------

_REVENUE = text(
    """
    SELECT t.currency, t.details->>'fee_type' AS type,
           sum(t.amount) FILTER (WHERE t.code = 'fee') AS charged,
           sum(t.amount) FILTER (WHERE t.code = 'fee_refund') AS refunded,
           count(DISTINCT t.details->>'fee_id') FILTER (WHERE t.code = 'fee') AS fee_count
    FROM ledger_transfers t
    JOIN ledger_accounts a ON a.id IN (t.credit_account_id, t.debit_account_id)
    WHERE a.program_id = :program_id AND a.kind = 'fee_revenue' AND a.owner_id IS NULL
      AND t.program_id = :program_id
      AND t.kind IN ('single', 'post') AND t.code IN ('fee', 'fee_refund')
      AND t.created_at >= :start AND t.created_at < :end
    GROUP BY 1, 2 ORDER BY 1, 2
    """
)


async def revenue(
    session: AsyncSession, program_id: str, start: datetime, end: datetime
) -> list[Row[Any]]:
    """Fee revenue per currency and fee type, from the ledger: posted fee transfers into the fee
    revenue account less fee refunds out of it, created in [start, end)."""
    return list(
        await session.execute(
            _REVENUE, {"program_id": to_uuid("prg", program_id), "start": start, "end": end}
        )
    )
