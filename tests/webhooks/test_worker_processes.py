"""`cardcore worker` processes against a real receiver: killed mid-batch, and two side by side."""

import asyncio
import os
import signal
import sys

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cardcore.config import Settings
from cardcore.db import create_sessionmaker
from cardcore.models import Event, WebhookMessage
from tests.factories import make_partner
from tests.webhooks.receiver import Receiver, running_receiver

# `cardcore worker` processes.
pytestmark = pytest.mark.slow

EVENTS = 24


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDCORE_")}
    env.update(
        CARDCORE_DATABASE_URL=settings.database_url or "",
        CARDCORE_MASTER_KEYS=settings.master_keys or "",
        CARDCORE_WEBHOOKS_ALLOW_HTTP="true",
        CARDCORE_WEBHOOKS_ALLOW_PRIVATE_NETWORKS="true",
        CARDCORE_WORKER_CONCURRENCY="4",
        CARDCORE_WORKER_POLL_INTERVAL_SECONDS="0.1",
        CARDCORE_LOG_LEVEL="WARNING",
    )
    return env


async def start_worker(settings: Settings) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cardcore",
        "worker",
        env=worker_env(settings),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def seed(app: FastAPI, engine: AsyncEngine, receiver: Receiver) -> set[str]:
    """A program subscribed to the receiver, and EVENTS committed events for it."""
    async with create_sessionmaker(engine)() as session:
        partner = await make_partner(session, "Workers")
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        created = await client.post(
            "/v1/webhooks",
            json={"url": receiver.url, "event_types": ["api_key.*"]},
            headers=partner.headers,
        )
        assert created.status_code == 201, created.text
        for n in range(EVENTS):
            response = await client.post(
                "/v1/api-keys", json={"name": f"k{n}"}, headers=partner.headers
            )
            assert response.status_code == 201
    async with create_sessionmaker(engine)() as session:
        ids = await session.scalars(
            select(Event.id).where(
                Event.program_id == partner.program_id,
                Event.type == "api_key.created",
                # The partner's first key was made before the subscription: not its business.
                Event.object_id != partner.api_key_id,
            )
        )
        expected = set(ids)
    assert len(expected) == EVENTS
    return expected


async def wait_for(condition, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds * 20)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


async def stop(process: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> None:
    if process.returncode is None:
        process.send_signal(sig)
    await asyncio.wait_for(process.wait(), 30)


async def test_a_worker_killed_mid_batch_loses_no_event(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    committed_app.state.settings = committed_app.state.settings.model_copy(
        update={"webhooks_allow_http": True, "webhooks_allow_private_networks": True}
    )
    with running_receiver(delay=0.3) as receiver:
        expected = await seed(committed_app, engine, receiver)
        first = await start_worker(settings)
        try:
            assert await wait_for(lambda: len(receiver.received) >= 4, 60)
        finally:
            await stop(first, signal.SIGKILL)  # no goodbye: mid-send, mid-transaction
        delivered_before_kill = set(receiver.ids())
        assert delivered_before_kill < expected, "the kill must land mid-batch"

        second = await start_worker(settings)
        try:
            assert await wait_for(lambda: set(receiver.ids()) >= expected, 90), (
                f"missing {len(expected - set(receiver.ids()))} events after restart"
            )
        finally:
            await stop(second)
    async with create_sessionmaker(engine)() as session:
        statuses = (await session.scalars(select(WebhookMessage.status).distinct())).all()
    assert statuses == ["succeeded"]


async def test_two_workers_never_send_the_same_message_at_once(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    committed_app.state.settings = committed_app.state.settings.model_copy(
        update={"webhooks_allow_http": True, "webhooks_allow_private_networks": True}
    )
    with running_receiver(delay=0.2) as receiver:
        expected = await seed(committed_app, engine, receiver)
        workers = [await start_worker(settings), await start_worker(settings)]
        try:
            assert await wait_for(lambda: set(receiver.ids()) >= expected, 90)
            await asyncio.sleep(0.5)  # a double send would have had time to show up
        finally:
            for process in workers:
                await stop(process)
        assert receiver.overlaps == [], "a message was in flight twice at once"
        ids = receiver.ids()
        assert sorted(ids) == sorted(expected), "each event exactly once when nothing crashes"
    async with create_sessionmaker(engine)() as session:
        pending = await session.scalar(
            select(func.count())
            .select_from(WebhookMessage)
            .where(WebhookMessage.status != "succeeded")
        )
    assert pending == 0
