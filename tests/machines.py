"""Hypothesis state machines against the real app, on an event loop of their own.

Hypothesis drives a machine synchronously, so its rules run the app's coroutines with
`self.loop.run_until_complete`. The app, its one connection and the transaction every example
runs in live on that loop; the transaction is rolled back at the end, so nothing is committed.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from cardcore.app import create_app
from cardcore.config import Settings
from cardcore.db import create_engine


@dataclass
class RolledBackApp:
    app: FastAPI
    client: AsyncClient
    connection: AsyncConnection
    sessionmaker: async_sessionmaker[AsyncSession]


def run_machine(
    settings_for_tests: Settings,
    machine: Any,
    prepare: Callable[[RolledBackApp], Awaitable[None]],
    *,
    max_examples: int,
    steps: int = 20,
) -> None:
    """Run `machine` (a RuleBasedStateMachine class) after `prepare` has built, through the app,
    the world every example starts from and handed the machine what it needs of it."""
    loop = asyncio.new_event_loop()

    async def open_() -> tuple[Any, ...]:
        engine = create_engine(settings_for_tests.database_url or "", settings_for_tests)
        connection = await engine.connect()
        transaction = await connection.begin()
        maker = async_sessionmaker(
            bind=connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            autoflush=False,
        )
        app = create_app(settings_for_tests, sessionmaker=maker)
        client = AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore")
        await prepare(RolledBackApp(app, client, connection, maker))
        return engine, connection, transaction, client

    try:
        engine, connection, transaction, client = loop.run_until_complete(open_())
        try:
            machine.loop = loop
            run_state_machine_as_test(
                machine,
                settings=settings(
                    max_examples=max_examples,
                    stateful_step_count=steps,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                ),
            )
        finally:
            loop.run_until_complete(client.aclose())
            loop.run_until_complete(transaction.rollback())
            loop.run_until_complete(connection.close())
            loop.run_until_complete(engine.dispose())
    finally:
        loop.close()
