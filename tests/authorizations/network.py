"""The card processor's side: network messages for the authorization tests, on a `World`'s card
and with its network key, and the balance they move."""

import itertools
from typing import Any

from httpx import AsyncClient, Response

from tests.factories import Partner, World

_ids = itertools.count(1)


def network_ids() -> dict[str, str]:
    return {"network_transaction_id": f"ntx-{next(_ids)}"}


def body(world: World, **overrides: Any) -> dict[str, Any]:
    """An authorization of 10.00 EUR at a Warsaw grocery, chip present."""
    message = {
        "card_id": world.card.id,
        "amount": 1_000,
        "currency": "EUR",
        "merchant": {"name": "Shop", "mcc": "5411", "country": "PL", "city": "Warszawa"},
        "channel": "POS",
        "entry_mode": "CHIP",
        "network": network_ids(),
    }
    return {**message, **overrides}


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


async def authorize(client: AsyncClient, world: World, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/network/authorizations", json=body(world, **overrides), headers=world.network.headers
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def follow_up(client: AsyncClient, world: World, path: str, **fields: Any) -> Response:
    """POST /v1/network/<path> with fresh network ids; the response."""
    return await client.post(
        f"/v1/network/{path}",
        json={"network": network_ids(), **fields},
        headers=world.network.headers,
    )


async def balance(client: AsyncClient, partner: Partner, balance_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/balances/{balance_id}", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def balance_of(client: AsyncClient, partner: Partner, world: World) -> dict[str, Any]:
    """The balance of the world's card."""
    return await balance(client, partner, world.card.balance_id)


async def available(client: AsyncClient, partner: Partner, world: World) -> int:
    return (await balance_of(client, partner, world))["available"]  # type: ignore[no-any-return]
