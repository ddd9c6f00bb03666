from collections.abc import Iterator

import pytest

from cardcore.config import Settings
from tests.fuzz.arena import Arena


@pytest.fixture(scope="package")
def arena(settings: Settings) -> Iterator[Arena]:
    """The populated world both tests of this package use; its own loop, rolled back at the end."""
    arena = Arena(settings.model_copy(update={"log_level": "WARNING"}))
    try:
        arena.open()
        yield arena
    finally:
        arena.close()
