"""The general job runner: persisted jobs, retries with backoff, periodic jobs once per period."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore.kit.idempotency import purge_expired
from cardcore.kit.jobs import PERIODIC, JobContext, JobQueue, enqueue, job, schedule_periodic
from cardcore.models import IdempotencyRecord, Job

CALLS: list[dict[str, Any]] = []


@job("test.record")
async def record(session: AsyncSession, payload: dict[str, Any], context: JobContext) -> None:
    CALLS.append(payload)


@job("test.flaky")
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


async def test_a_job_runs_once(
    sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    CALLS.clear()
    await enqueue(session, "test.record", {"n": 1})
    await enqueue(session, "test.record", {"n": 2}, unique_key="only-once")
    await enqueue(session, "test.record", {"n": 3}, unique_key="only-once")
    await enqueue(session, "test.record", {"n": 4}, run_at=datetime.now(UTC) + timedelta(hours=1))
    await session.commit()
    queue = JobQueue(sessionmaker)
    while await queue.run_one():
        pass
    assert sorted(call["n"] for call in CALLS) == [1, 2]


async def test_a_failing_job_is_retried_with_backoff_and_its_effects_undone(
    sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    CALLS.clear()
    await enqueue(session, "test.flaky", {})
    await session.commit()
    queue = JobQueue(sessionmaker)
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
        await schedule_periodic(session, now)
    rows = (
        await session.scalars(select(Job.unique_key).where(Job.kind == "idempotency.purge_expired"))
    ).all()
    assert len(rows) == 1
    await schedule_periodic(session, now + PERIODIC["idempotency.purge_expired"].every)
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
