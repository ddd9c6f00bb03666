"""What a server process builds after start-up and keeps (each route's dependencies, models and
serializers, made by its first requests) is frozen once the process is warm, so the garbage
collector's full passes stop walking it (app.WARM_SECONDS)."""

import asyncio
import gc

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from cardcore import app as app_module
from cardcore.config import Settings
from cardcore.db import create_sessionmaker


def _collected(value: object) -> bool:
    """Whether the garbage collector's generations hold `value` (frozen objects are apart)."""
    return any(held is value for held in gc.get_objects())


async def test_what_the_first_requests_built_is_frozen_once_warm(
    settings: Settings, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "WARM_SECONDS", 0.05)
    app = app_module.create_app(settings, sessionmaker=create_sessionmaker(engine))
    async with app.router.lifespan_context(app):
        built_later: list[object] = [object()]
        app.state.built_later = built_later
        assert _collected(built_later)
        frozen = gc.get_freeze_count()
        await asyncio.sleep(0.3)
        assert gc.get_freeze_count() > frozen
        assert not _collected(built_later)
        assert app.state.built_later is built_later
