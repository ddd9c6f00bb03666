"""`db.driver_connection` hands out the asyncpg connection under a session inside the session's
one transaction, even before the session has sent anything: the authorization path sends its
prepared statements that way, and a statement that ran outside the transaction would commit on
its own, whatever the request's outcome."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from cardcore.db import driver_connection


async def test_a_statement_sent_first_to_the_driver_is_in_the_sessions_transaction(
    engine: AsyncEngine,
) -> None:
    async with AsyncSession(engine) as session:
        raw = await driver_connection(session)
        await raw.execute("CREATE TABLE driver_connection_probe (x int)")
        driver_xact = await raw.fetchval("SELECT pg_current_xact_id()::text")
        session_xact = await session.scalar(text("SELECT pg_current_xact_id()::text"))
        assert driver_xact == session_xact
        await session.rollback()
    async with engine.connect() as probe:
        left = await probe.scalar(text("SELECT to_regclass('driver_connection_probe')::text"))
    assert left is None, "what the driver ran was committed without the session"


async def test_the_driver_joins_a_transaction_the_session_has_begun(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session_xact = await session.scalar(text("SELECT pg_current_xact_id()::text"))
        raw = await driver_connection(session)
        assert await raw.fetchval("SELECT pg_current_xact_id()::text") == session_xact
        await session.rollback()
