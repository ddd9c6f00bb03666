"""The expiry of holds the network never cleared: after the program's `hold_expiry_days`, a
pending authorization's hold is released as a follow-up of kind `expiry` would release it
(follow_ups.py), with `authorization.expired` for partners."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.authorizations.follow_ups import follow_up
from cardcore.kit.jobs import JobContext
from cardcore.models import CardTransaction, Program, TransactionStatus


async def expire_now(
    session: AsyncSession, *, program_id: str, transaction_id: str
) -> dict[str, Any]:
    """Release a hold now, as its expiry would."""
    return await follow_up(
        session,
        kind="expiry",
        program_id=program_id,
        transaction_id=transaction_id,
        network_key=f"expiry|{transaction_id}",
        amount=None,
    )


async def expire_holds(session: AsyncSession, payload: dict[str, Any], context: JobContext) -> None:
    """Release holds the network never cleared, after the program's hold_expiry_days."""
    stale = await session.execute(
        select(CardTransaction.program_id, CardTransaction.id)
        .join(Program, Program.id == CardTransaction.program_id)
        .where(
            CardTransaction.status == TransactionStatus.PENDING,
            CardTransaction.created_at
            < func.now() - func.make_interval(0, 0, 0, Program.hold_expiry_days),
        )
        .with_for_update(of=CardTransaction, skip_locked=True)
        .limit(500)
    )
    for program_id, transaction_id in stale.all():
        await expire_now(session, program_id=program_id, transaction_id=transaction_id)
