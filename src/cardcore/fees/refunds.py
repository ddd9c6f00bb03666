"""Fee refunds: all or part of a charged fee paid back to its balance from fee revenue."""

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.fees.events import FeeRefunded
from cardcore.fees.service import REFUND_CODE, event_fields, revenue_account, transfer_details
from cardcore.kit.errors import CardcoreError, validation_error
from cardcore.kit.outbox import record_event
from cardcore.ledger import service as ledger
from cardcore.models import (
    Balance,
    Fee,
    FeeRefund,
    FeeStatus,
)
from cardcore.models.ids import new_id


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
            details=transfer_details(fee),
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
        data=FeeRefunded(**event_fields(fee), refund_id=made.id, refunded_amount=amount),
    )
    return made
