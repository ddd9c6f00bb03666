"""The fees' scheduled work: periodic card fees (fees/periodic.py) and fees waiting for funds."""

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.fees import periodic, service
from cardcore.kit.jobs import JobContext, JobKind, enqueue


async def charge_periodic_job(
    session: AsyncSession, payload: dict[str, Any], context: JobContext
) -> None:
    """One batch. A full batch queues the next one, to run as soon as this one commits: at one
    batch per 10 minutes a program with more cards than 288,000 would fall behind its daily fees
    and lose those older than the catch-up window."""
    limit = int(payload.get("limit", periodic.BATCH))
    if await periodic.charge_periodic(session, limit=limit) >= limit:
        await enqueue(session, CHARGE_PERIODIC, {"limit": limit})


async def retry_due_job(
    session: AsyncSession, payload: dict[str, Any], context: JobContext
) -> None:
    await service.retry_due(session)


CHARGE_PERIODIC = JobKind("fees.charge_periodic", charge_periodic_job, every=timedelta(minutes=10))
RETRY_DUE = JobKind("fees.retry_due", retry_due_job, every=timedelta(hours=1))
JOBS = (CHARGE_PERIODIC, RETRY_DUE)
