"""Fees that follow a transaction (card TRANSACTION and FX fees, IBAN TRANSFER fees): held with
it at authorization (no funds for the fee, no authorization), posted when it settles at clearing
(repriced on the cleared amount), released when it is reversed, expires or fails."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.fees.events import FeeCharged
from cardcore.fees.schedules import Versions, priced_from, schedules_in_effect
from cardcore.fees.schemas import FeeRule
from cardcore.fees.service import (
    FEE_CODE,
    Charged,
    charged,
    fee_transfer,
    mark_charged,
    mark_skipped,
    new_line,
    take,
    transfer_details,
)
from cardcore.ledger import service as ledger
from cardcore.models import (
    Card,
    CardTransaction,
    Fee,
    FeeStatus,
)


async def lines_for(
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
        transfer_id = await take(session, fee, account_id)
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
                **fee_transfer(fee, account_id, revenue_id, fee.amount),
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
            held,
            kind="post",
            amount=min(final, fee.amount),
            code=FEE_CODE,
            details=transfer_details(fee),
        )
        if final > fee.amount:
            moves.transfer(
                **fee_transfer(fee, account_id, held.credit_account_id, final - fee.amount)
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
