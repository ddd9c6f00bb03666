"""The ledger's scheduled work: folding the balance deltas into their accounts."""

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.jobs import JobContext, JobKind
from cardcore.ledger.service import fold_deltas


async def fold_deltas_job(
    session: AsyncSession, payload: dict[str, Any], context: JobContext
) -> None:
    await fold_deltas(session)


# Often, so that each fold is small: one statement folding half a minute of a busy card
# network's deltas held a CPU long enough to show in the authorizations' latency.
FOLD_DELTAS = JobKind("ledger.fold_deltas", fold_deltas_job, every=timedelta(seconds=5))
JOBS = (FOLD_DELTAS,)
