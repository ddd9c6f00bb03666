"""The background worker: the job runner (kit/jobs.py) with cardcore's queues.

`cardcore worker` runs it alone; `cardcore serve` runs one inside each API process unless
CARDCORE_RUN_WORKER=false. Any number can run side by side (see kit/jobs.py).
"""

import asyncio

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import cardcore.authorizations.expiry
import cardcore.cards.jobs
import cardcore.cards.lifecycle
import cardcore.fees.periodic
import cardcore.kit.idempotency
import cardcore.ledger.service  # noqa: F401 - these modules register their jobs
from cardcore.config import Settings
from cardcore.kit.crypto import Keyring
from cardcore.kit.jobs import JobContext, JobQueue, Worker
from cardcore.webhooks.delivery import DeliveryQueue, FanOutQueue


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
            JobQueue(sessionmaker, JobContext(settings=settings, keyring=keyring)),
        ],
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
