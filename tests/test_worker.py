"""The general job runner: persisted jobs, retries with backoff, periodic jobs once per period."""

import importlib
import pkgutil
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import cardcore
from cardcore.kit.idempotency import PURGE_EXPIRED, purge_expired
from cardcore.kit.jobs import JobContext, JobKind, JobQueue, enqueue, schedule_periodic
from cardcore.models import IdempotencyRecord, Job
from cardcore.worker import JOBS

CALLS: list[dict[str, Any]] = []


async def record(session: AsyncSession, payload: dict[str, Any], context: JobContext) -> None:
    CALLS.append(payload)


async def flaky(session: AsyncSession, payload: dict[str, Any], context: JobContext) -> None:
    session.add(
        IdempotencyRecord(
            scope="flaky",
            key=str(len(CALLS)),
            request_hash=b"",
            status_code=200,
            response_body=b"",
            expires_at=datetime.now(UTC),
        )
    )
    CALLS.append(payload)
    if len(CALLS) < 3:
        raise RuntimeError("not yet")


RECORD = JobKind("test.record", record)
FLAKY = JobKind("test.flaky", flaky)


def test_the_worker_runs_every_kind_of_job_cardcore_defines() -> None:
    defined = set()
    for module in pkgutil.walk_packages(cardcore.__path__, "cardcore."):
        if module.name != "cardcore.__main__":
            found = vars(importlib.import_module(module.name)).values()
            defined |= {kind for kind in found if isinstance(kind, JobKind)}
    assert {kind.name for kind in defined} == {kind.name for kind in JOBS}
    assert defined <= set(JOBS), "a kind of job is defined twice under one name"


def test_a_kind_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"test\.record is listed twice"):
        JobQueue(async_sessionmaker(), [RECORD, JobKind("test.record", flaky)])


async def test_a_job_runs_once(
    sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    CALLS.clear()
    await enqueue(session, RECORD, {"n": 1})
    await enqueue(session, RECORD, {"n": 2}, unique_key="only-once")
    await enqueue(session, RECORD, {"n": 3}, unique_key="only-once")
    await enqueue(session, RECORD, {"n": 4}, run_at=datetime.now(UTC) + timedelta(hours=1))
    await session.commit()
    queue = JobQueue(sessionmaker, [RECORD, FLAKY])
    while await queue.run_one():
        pass
    assert sorted(call["n"] for call in CALLS) == [1, 2]


async def test_a_failing_job_is_retried_with_backoff_and_its_effects_undone(
    sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    CALLS.clear()
    await enqueue(session, FLAKY, {})
    await session.commit()
    queue = JobQueue(sessionmaker, [RECORD, FLAKY])
    for expected_attempts in (1, 2):
        assert await queue.run_one()
        row = await session.scalar(select(Job).where(Job.kind == "test.flaky"))
        assert row is not None
        await session.refresh(row)
        assert (row.status, row.attempts) == ("pending", expected_attempts)
        assert row.run_at > datetime.now(UTC), "backed off into the future"
        assert "not yet" in (row.last_error or "")
        row.run_at = datetime.now(UTC) - timedelta(seconds=1)  # time moves on
        await session.commit()
    assert await queue.run_one()
    await session.refresh(row)
    assert row.status == "done"
    # The two failed runs' writes were rolled back with their savepoints; the third stayed.
    kept = await session.scalar(
        select(func.count())
        .select_from(IdempotencyRecord)
        .where(IdempotencyRecord.scope == "flaky")
    )
    assert kept == 1


async def test_periodic_jobs_get_one_row_per_period(session: AsyncSession) -> None:
    now = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)
    for _ in range(3):  # three workers' schedulers in the same period
        await schedule_periodic(session, JOBS, now)
    rows = (
        await session.scalars(select(Job.unique_key).where(Job.kind == "idempotency.purge_expired"))
    ).all()
    assert len(rows) == 1
    await schedule_periodic(session, JOBS, now + PURGE_EXPIRED.every)
    rows = (
        await session.scalars(select(Job.unique_key).where(Job.kind == "idempotency.purge_expired"))
    ).all()
    assert len(rows) == 2


async def test_idempotency_purge_removes_only_expired(session: AsyncSession) -> None:
    for key, delta in (("old", -1), ("live", 3600)):
        session.add(
            IdempotencyRecord(
                scope="prg_test",
                key=key,
                request_hash=b"h",
                status_code=201,
                response_body=b"{}",
                expires_at=datetime.now(UTC) + timedelta(seconds=delta),
            )
        )
    await session.commit()
    await purge_expired(session, {}, JobContext())
    keys = (
        await session.scalars(
            select(IdempotencyRecord.key).where(IdempotencyRecord.scope == "prg_test")
        )
    ).all()
    assert list(keys) == ["live"]
