"""The issuing processor port: who makes card numbers and plastics.

The card service talks only to `IssuingProcessor`; `local` is built in. A real processor (a
bureau, a processor's issuing API) is one more class with these methods, chosen by
CARDCORE_ISSUING_PROCESSOR — nothing in the card service changes."""

import secrets
from collections.abc import Callable
from typing import Any, Protocol

from cardcore.cards.security import generate_pan


class IssuingProcessor(Protocol):
    name: str

    def new_pan(self, bin: str, length: int) -> str:
        """A candidate card number (the service checks uniqueness and retries)."""

    async def order_plastic(
        self, card_id: str, embossing_name: str, address: dict[str, Any]
    ) -> str:
        """Send a physical card to production; returns the processor's order reference."""


class LocalProcessor:
    """Generates PANs itself and stands in for the card bureau: an order is accepted at once,
    and production and delivery are reported through the card's fulfillment routes."""

    name = "local"

    def new_pan(self, bin: str, length: int) -> str:
        return generate_pan(bin, length)

    async def order_plastic(
        self, card_id: str, embossing_name: str, address: dict[str, Any]
    ) -> str:
        return f"local-{secrets.token_hex(6)}"


PROCESSORS: dict[str, Callable[[], IssuingProcessor]] = {"local": LocalProcessor}


def processor(name: str) -> IssuingProcessor:
    return PROCESSORS[name]()
