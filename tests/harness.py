"""What the test harness (conftest.py) is built on, for the tests that reach below it: a DSN
asyncpg takes for a database of the test server, a scratch database of one's own there, and the
card verification keys the test settings hold."""

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from cardcore.models import Base

CVK_A, CVK_B = "0123456789ABCDEF", "FEDCBA9876543210"


def asyncpg_dsn(url: URL) -> tuple[str, dict[str, str]]:
    """asyncpg wants a plain DSN; a Unix-socket host travels as a keyword."""
    query = dict(url.query)
    host = query.pop("host", None) or url.host
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False), (
        {"host": host} if host else {}
    )


@asynccontextmanager
async def scratch_database(server_url: URL, prefix: str) -> AsyncIterator[URL]:
    """An empty database of its own on the test server (one per pytest worker and purpose),
    dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    dsn, extra = asyncpg_dsn(server_url)
    admin = await asyncpg.connect(dsn, **extra)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield server_url.set(database=name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def truncate_all(engine: AsyncEngine) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
