"""`cardcore worker`: background maintenance, run beside the API processes.

Today it purges expired idempotency records. The webhooks issue turns this loop into the general
job runner (persisted jobs claimed with FOR UPDATE SKIP LOCKED); what runs here must already be
safe with several workers side by side, which a DELETE of expired rows is.
"""

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore.kit.idempotency import purge_expired
from cardcore.kit.logging import get_logger

log = get_logger(__name__)


async def run_maintenance(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session, session.begin():
        purged = await purge_expired(session)
    if purged:
        log.info("idempotency_records_purged", count=purged)
    return purged


async def run_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    stop: asyncio.Event,
    interval_seconds: float,
) -> None:
    while not stop.is_set():
        try:
            await run_maintenance(sessionmaker)
        except Exception:
            # A database blip must not end the worker; the next round tries again.
            log.exception("maintenance_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
