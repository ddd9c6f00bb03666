"""The cards' services: built once per process (app.py; the worker's jobs build their own), and
reached by routes as one typed dependency."""

from typing import Annotated, cast

from fastapi import Depends, Request

from cardcore.cards.keys import load_cvk
from cardcore.cards.processors import processor
from cardcore.cards.service import CardServices
from cardcore.cards.vault import PanVault
from cardcore.config import Settings
from cardcore.kit.crypto import Keyring


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
