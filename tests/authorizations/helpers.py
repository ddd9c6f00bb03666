"""A funded card and a network key, made through the API, for the authorization tests."""

from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.models import ProgramMode
from tests.auth.helpers import bearer
from tests.balances.helpers import reload
from tests.cards.helpers import cardholder, issue, setup_cards
from tests.conftest import Partner, make_partner


@dataclass
class Funded:
    """A card on its own balance."""

    card_id: str
    balance_id: str


@dataclass
class World:
    partner: Partner
    network: dict[str, str]  # the card processor's X-API-Key header
    cards: list[Funded]


async def make_base(
    client: AsyncClient, session: AsyncSession, name: str, mode: ProgramMode = ProgramMode.LIVE
) -> dict[str, Any]:
    """A funded partner with an admin, a card product and a network key (committed)."""
    partner = await make_partner(session, name, mode)
    setup = await setup_cards(client, session, partner)
    await session.commit()
    key = await client.post(
        "/v1/admin/network-keys", json={"name": "processor"}, headers=bearer(setup["token"])
    )
    assert key.status_code == 201, key.text
    return {**setup, "partner": partner, "network": {"X-API-Key": key.json()["data"]["secret"]}}


async def fund_cards(
    client: AsyncClient, partner: Partner, base: dict[str, Any], *funding: int
) -> list[Funded]:
    """One new cardholder per amount in `funding`, each with a balance reloaded by that amount
    and one virtual card on it."""
    cards = []
    for n, amount in enumerate(funding):
        holder = await cardholder(client, partner, phone=f"+4860123{n:04d}")
        if amount:
            reloaded = await reload(client, partner, holder["balance_id"], amount)
            assert reloaded.status_code == 200, reloaded.text
        issued = await issue(client, partner, {**base, **holder})
        assert issued.status_code == 201, issued.text
        cards.append(Funded(card_id=issued.json()["data"]["id"], balance_id=holder["balance_id"]))
    return cards


async def make_world(client: AsyncClient, session: AsyncSession, name: str, *funding: int) -> World:
    base = await make_base(client, session, name)
    partner = base["partner"]
    cards = await fund_cards(client, partner, base, *funding)
    return World(partner=partner, network=base["network"], cards=cards)


def authorization(card_id: str, amount: int, network_transaction_id: str) -> dict[str, Any]:
    """The body of POST /v1/network/authorizations for a plain chip purchase in EUR."""
    return {
        "card_id": card_id,
        "amount": amount,
        "currency": "EUR",
        "merchant": {"name": "Shop", "mcc": "5411", "country": "PL"},
        "channel": "POS",
        "entry_mode": "CHIP",
        "network": {"network_transaction_id": network_transaction_id},
    }


async def balance(client: AsyncClient, partner: Partner, balance_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/balances/{balance_id}", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]
