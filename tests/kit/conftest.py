"""Kit tests that need a card and a network key start from the authorization tests' `world`."""

from tests.authorizations.conftest import world

__all__ = ["world"]
