"""Fee tests start from the authorization tests' `world`: a card on a balance of 100.00 EUR,
an admin token and the processor's network key."""

from tests.authorizations.conftest import world

__all__ = ["world"]
