"""Test harness: a real PostgreSQL, a schema built by the Alembic migrations, a rollback per test.

The server is the one in CARDCORE_TEST_DATABASE_URL, or else an embedded one under
`.cardcore-test/`. Each run creates a database of its own on it, migrates it to head, and drops it
at the end. Each test runs inside a transaction that is rolled back afterwards; the app's
request sessions join that transaction through savepoints, so their commits are real to the code
under test and invisible to the next test. Tests that need real concurrent transactions use the
`committed_app` fixture instead, which empties the tables after the test.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from cardcore.app import create_app
from cardcore.cli import run_migrations
from cardcore.config import Settings, get_settings
from cardcore.db import create_engine, start_embedded_postgres, to_async_url
from cardcore.kit.crypto import generate_key_spec
from tests.factories import Partner, World, make_partner, make_world
from tests.harness import CVK_A, CVK_B, scratch_database, truncate_all

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def server_url() -> URL:
    external = os.environ.get("CARDCORE_TEST_DATABASE_URL")
    if external:
        return to_async_url(external)
    return start_embedded_postgres(ROOT / ".cardcore-test", database="postgres")


@pytest.fixture(scope="session")
async def database_url(server_url: URL) -> AsyncIterator[URL]:
    async with scratch_database(server_url, "cardcore_test") as url:
        # Alembic's env runs its own event loop, so it gets a thread of its own.
        await asyncio.to_thread(run_migrations, url)
        yield url


@pytest.fixture
async def scratch_url(server_url: URL) -> AsyncIterator[URL]:
    """An empty database for a test that migrates down and up on its own."""
    async with scratch_database(server_url, "cardcore_scratch") as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: URL, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url.render_as_string(hide_password=False),
        master_keys=generate_key_spec("test"),
        data_dir=tmp_path_factory.mktemp("data"),
        cvk_a=CVK_A,
        cvk_b=CVK_B,
    )


@pytest.fixture(scope="session")
async def engine(database_url: URL, settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, settings)
    yield engine
    # Whatever the suite left committed, the books must balance (`cardcore ledger verify`).
    from cardcore.ledger.verify import verify

    async with AsyncSession(engine) as session:
        problems = await verify(session)
    await engine.dispose()
    if problems:
        pytest.fail("ledger verify after the suite: " + "; ".join(problems))


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )


@pytest.fixture
async def session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def app(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> FastAPI:
    return create_app(settings, sessionmaker=sessionmaker)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore") as c:
        yield c


@pytest.fixture
async def partner(session: AsyncSession) -> Partner:
    return await make_partner(session, "Program A")


@pytest.fixture
async def other_partner(session: AsyncSession) -> Partner:
    return await make_partner(session, "Program B")


@pytest.fixture
async def world(app: FastAPI, partner: Partner) -> World:
    """What tests of cards and their money start from: `partner`'s program set up to issue,
    one card on a balance of 100.00 EUR, and the card processor's network key (factories.py)."""
    return await make_world(app, partner)


@pytest.fixture
async def committed_app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    """An app whose requests commit for real, on their own pooled connections."""
    from cardcore.db import create_sessionmaker

    try:
        yield create_app(settings, sessionmaker=create_sessionmaker(engine))
    finally:
        await truncate_all(engine)


@pytest.fixture
def fresh_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def settings_for_tests(settings: Settings) -> Settings:
    """The settings, for a synchronous test that opens its own event loop and connections."""
    return settings
