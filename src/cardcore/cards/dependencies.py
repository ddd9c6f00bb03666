"""The cards' services: built once per process (app.py; the worker's jobs build their own), and
reached by routes as one typed dependency; and the guard of the routes that service a card."""

from typing import Annotated, cast

from fastapi import Depends, Request, Security

from cardcore.cards.keys import load_cvk
from cardcore.cards.processors import processor
from cardcore.cards.service import CardServices
from cardcore.cards.vault import PanVault
from cardcore.config import Settings
from cardcore.kit.access import partner_or_admin
from cardcore.kit.crypto import Keyring
from cardcore.kit.principals import Principal


def build_card_services(settings: Settings, keyring: Keyring) -> CardServices:
    return CardServices(
        keyring=keyring,
        vault=PanVault(keyring),
        processor=processor(settings.issuing_processor),
        cvk=load_cvk(settings),
    )


def card_services(request: Request) -> CardServices:
    return cast(CardServices, request.app.state.card_services)


CardServicesDep = Annotated[CardServices, Depends(card_services)]

# A partner, or an admin whose role may service cards (reset a CVV, act on a report or a
# physical card's journey, activate): every card route that is neither issuance nor reveal.
CardServicer = Annotated[Principal, Security(partner_or_admin("cards.service"))]
