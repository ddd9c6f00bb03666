"""The background job runner.

Work lives in PostgreSQL, never only in memory, so a worker killed at any moment loses nothing:
- *queues* hand out one unit of work at a time, claimed with `SELECT … FOR UPDATE SKIP LOCKED`
  inside a transaction that stays open while the work runs. Any number of workers can run side
  by side: a claimed row is invisible to the others, and if the worker dies, its transaction
  dies with it and the row is claimable again;
- the general `jobs` table is one queue: a job runs once, in a savepoint of the claiming
  transaction; a failure rolls its effects back and reschedules it with exponential backoff;
- *periodic* jobs get one `jobs` row per period (a unique key names the period), so however many
  workers run, each period runs once.

Webhook delivery is a queue of its own (webhooks/delivery.py), because its messages carry their
own retry schedule and per-object ordering.
"""

import asyncio
import contextlib
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore.kit.logging import get_logger
from cardcore.models import Job, JobStatus

log = get_logger(__name__)


@dataclass(frozen=True)
class JobContext:
    """What a job may need beyond its session and payload (settings, keys)."""

    settings: Any = None
    keyring: Any = None


Handler = Callable[[AsyncSession, dict[str, Any], JobContext], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    """A kind of job: the name its rows carry, what runs one, and how often, if it is periodic.
    Each feature lists its kinds in its jobs.py; the worker is given them all (worker.py)."""

    name: str
    handler: Handler
    every: timedelta | None = None


async def enqueue(
    session: AsyncSession,
    kind: JobKind,
    payload: dict[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    unique_key: str | None = None,
    max_attempts: int = 10,
) -> None:
    """Add a job in the caller's transaction: it exists exactly when the caller's change does.
    With `unique_key`, a second enqueue of the same key does nothing."""
    values: dict[str, Any] = {
        "kind": kind.name,
        "payload": payload or {},
        "run_at": run_at or func.statement_timestamp(),
        "unique_key": unique_key,
        "max_attempts": max_attempts,
    }
    await session.execute(insert(Job).values(values).on_conflict_do_nothing())


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s, … capped at an hour, with ±20 % jitter so retries do not stampede."""
    base = min(5 * 2 ** (attempts - 1), 3600)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not secrets


class Queue(Protocol):
    name: str

    async def run_one(self) -> bool:
        """Claim and do one unit of work; False when there was nothing to do."""


class JobQueue:
    name = "jobs"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        kinds: Sequence[JobKind],
        context: JobContext | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.handlers: dict[str, Handler] = {}
        for kind in kinds:
            if kind.name in self.handlers:
                raise ValueError(f"job {kind.name} is listed twice")
            self.handlers[kind.name] = kind.handler
        self.context = context or JobContext()

    async def run_one(self) -> bool:
        async with self.sessionmaker() as session, session.begin():
            claimed = await session.scalar(
                select(Job)
                # statement_timestamp, not now(): now() is frozen at the start of the
                # transaction, which for a caller's long transaction is in the past.
                .where(Job.status == JobStatus.PENDING, Job.run_at <= func.statement_timestamp())
                .order_by(Job.run_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if claimed is None:
                return False
            handler = self.handlers.get(claimed.kind)
            claimed.attempts += 1
            try:
                if handler is None:
                    raise LookupError(f"no handler for job {claimed.kind}")
                async with session.begin_nested():
                    await handler(session, claimed.payload, self.context)
            except Exception:
                claimed.last_error = traceback.format_exc(limit=5)[-4000:]
                if claimed.attempts >= claimed.max_attempts:
                    claimed.status = JobStatus.FAILED
                    claimed.finished_at = datetime.now(UTC)
                    log.error("job_failed", kind=claimed.kind, job_id=claimed.id)
                else:
                    claimed.run_at = datetime.now(UTC) + backoff(claimed.attempts)
                    log.warning("job_retry", kind=claimed.kind, job_id=claimed.id)
            else:
                claimed.status = JobStatus.DONE
                claimed.finished_at = datetime.now(UTC)
        return True


async def schedule_periodic(
    session: AsyncSession, kinds: Sequence[JobKind], now: datetime | None = None
) -> None:
    """Make sure the current period of every periodic kind has its row (idempotent)."""
    now = now or datetime.now(UTC)
    for kind in kinds:
        if kind.every is None:
            continue
        seconds = kind.every.total_seconds()
        slot = int(now.timestamp() // seconds)
        await enqueue(
            session,
            kind,
            run_at=datetime.fromtimestamp(slot * seconds, UTC),
            unique_key=f"{kind.name}@{slot}",
            max_attempts=1,
        )


async def purge_finished_jobs(
    session: AsyncSession, payload: dict[str, Any], context: JobContext
) -> None:
    """Finished jobs are kept a week for inspection, then removed."""
    await session.execute(
        delete(Job).where(
            Job.status.in_([JobStatus.DONE, JobStatus.FAILED]),
            Job.finished_at < func.now() - timedelta(days=7),
        )
    )


PURGE_FINISHED = JobKind("jobs.purge_finished", purge_finished_jobs, every=timedelta(hours=1))


class Worker:
    """Runs `concurrency` lanes; each lane takes work from every queue in turn and sleeps for
    the poll interval when none had any."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queues: list[Queue],
        *,
        periodic: Sequence[JobKind] = (),
        concurrency: int = 4,
        poll_interval: float = 1.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.queues = queues
        self.periodic = periodic
        self.concurrency = concurrency
        self.poll_interval = poll_interval

    async def run(self, stop: asyncio.Event) -> None:
        lanes = [asyncio.create_task(self._lane(stop)) for _ in range(self.concurrency)]
        lanes.append(asyncio.create_task(self._scheduler(stop)))
        try:
            await asyncio.gather(*lanes)
        finally:
            for lane in lanes:
                lane.cancel()

    async def drain(self, max_rounds: int = 1000) -> int:
        """Do work until every queue is empty (tests and one-shot runs). Returns units done."""
        done = 0
        for _ in range(max_rounds):
            progressed = False
            for queue in self.queues:
                while await queue.run_one():
                    done += 1
                    progressed = True
            if not progressed:
                return done
        return done

    async def _lane(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            did_work = False
            for queue in self.queues:
                try:
                    did_work = await queue.run_one() or did_work
                except Exception:
                    # A database blip must not end the lane; the work is still in its table.
                    log.exception("queue_failed", queue=queue.name)
                    await _sleep(stop, self.poll_interval)
            if not did_work:
                await _sleep(stop, self.poll_interval)

    async def _scheduler(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                async with self.sessionmaker() as session, session.begin():
                    await schedule_periodic(session, self.periodic)
            except Exception:
                log.exception("scheduler_failed")
            await _sleep(stop, max(1.0, 5.0 - (time.monotonic() - started)))


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
