"""The background worker: the job runner (kit/jobs.py) with cardcore's queues.

`cardcore worker` runs it alone; `cardcore serve` runs one inside each API process unless
CARDCORE_RUN_WORKER=false. Any number can run side by side (see kit/jobs.py).
"""

import asyncio

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore.authorizations import jobs as authorization_jobs
from cardcore.cards import jobs as card_jobs
from cardcore.config import Settings
from cardcore.fees import jobs as fee_jobs
from cardcore.kit import idempotency
from cardcore.kit.crypto import Keyring
from cardcore.kit.jobs import PURGE_FINISHED, JobContext, JobQueue, Worker
from cardcore.ledger import jobs as ledger_jobs
from cardcore.webhooks.delivery import DeliveryQueue, FanOutQueue

# Every kind of job the worker runs. A kind left out is never run (its rows fail for want of a
# handler), and tests/test_worker.py says so.
JOBS = (
    PURGE_FINISHED,
    idempotency.PURGE_EXPIRED,
    *authorization_jobs.JOBS,
    *card_jobs.JOBS,
    *fee_jobs.JOBS,
    *ledger_jobs.JOBS,
)


def build_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    settings: Settings,
    *,
    client: httpx.AsyncClient | None = None,
) -> Worker:
    return Worker(
        sessionmaker,
        [
            FanOutQueue(sessionmaker),
            DeliveryQueue(sessionmaker, keyring, settings, client=client),
            JobQueue(sessionmaker, JOBS, JobContext(settings=settings, keyring=keyring)),
        ],
        periodic=JOBS,
        concurrency=settings.worker_concurrency,
        poll_interval=settings.worker_poll_interval_seconds,
    )


async def run_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    settings: Settings,
    *,
    stop: asyncio.Event,
) -> None:
    await build_worker(sessionmaker, keyring, settings).run(stop)
