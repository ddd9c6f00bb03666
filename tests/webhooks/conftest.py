from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore.app import create_app
from cardcore.config import Settings
from cardcore.kit.jobs import Worker
from cardcore.worker import build_worker
from tests.webhooks.receiver import Receiver, running_receiver


@pytest.fixture
def local_settings(settings: Settings) -> Settings:
    """Local development settings: a loopback http receiver is allowed."""
    return settings.model_copy(
        update={"webhooks_allow_http": True, "webhooks_allow_private_networks": True}
    )


@pytest.fixture
def app(local_settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> FastAPI:
    return create_app(local_settings, sessionmaker=sessionmaker)


@pytest.fixture
def worker(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession], local_settings: Settings
) -> Worker:
    return build_worker(sessionmaker, app.state.keyring, local_settings)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
