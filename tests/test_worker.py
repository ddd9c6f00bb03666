import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore.models import IdempotencyRecord
from cardcore.worker import run_maintenance, run_worker


def _record(key: str, expires_in: timedelta) -> IdempotencyRecord:
    return IdempotencyRecord(
        scope="prg_test",
        key=key,
        request_hash=b"h",
        status_code=201,
        response_body=b"{}",
        expires_at=datetime.now(UTC) + expires_in,
    )


async def test_maintenance_purges_only_expired_idempotency_records(
    sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    session.add_all([_record("old", timedelta(seconds=-1)), _record("live", timedelta(hours=1))])
    await session.commit()
    assert await run_maintenance(sessionmaker) == 1
    keys = (await session.scalars(select(IdempotencyRecord.key))).all()
    assert list(keys) == ["live"]


async def test_worker_loop_stops_when_told(
    sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    session.add(_record("old", timedelta(seconds=-1)))
    await session.commit()
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(sessionmaker, stop=stop, interval_seconds=3600))
    for _ in range(100):
        if not (await session.scalars(select(IdempotencyRecord.key))).all():
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert (await session.scalars(select(IdempotencyRecord.key))).all() == []
