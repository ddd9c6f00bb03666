"""Network messages for the authorization tests, against the `world` fixture."""

import itertools

from httpx import AsyncClient

from tests.conftest import Partner

_ids = itertools.count(1)


def network_ids() -> dict[str, str]:
    return {"network_transaction_id": f"ntx-{next(_ids)}"}


def body(world: dict, **overrides) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """An authorization of 10.00 EUR at a Warsaw grocery, chip present."""
    message = {
        "card_id": world["card"]["id"],
        "amount": 1_000,
        "currency": "EUR",
        "merchant": {"name": "Shop", "mcc": "5411", "country": "PL", "city": "Warszawa"},
        "channel": "POS",
        "entry_mode": "CHIP",
        "network": network_ids(),
    }
    return {**message, **overrides}


async def authorize(client: AsyncClient, world: dict, **overrides) -> dict:  # type: ignore[no-untyped-def, type-arg]
    response = await client.post(
        "/v1/network/authorizations", json=body(world, **overrides), headers=world["network"]
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def follow_up(client: AsyncClient, world: dict, path: str, **fields):  # type: ignore[no-untyped-def, type-arg]
    """POST /v1/network/<path> with fresh network ids; the response."""
    return await client.post(
        f"/v1/network/{path}", json={"network": network_ids(), **fields}, headers=world["network"]
    )


async def balance_of(client: AsyncClient, partner: Partner, world: dict) -> dict:  # type: ignore[type-arg]
    response = await client.get(f"/v1/balances/{world['balance_id']}", headers=partner.headers)
    return response.json()["data"]  # type: ignore[no-any-return]


async def available(client: AsyncClient, partner: Partner, world: dict) -> int:  # type: ignore[type-arg]
    return (await balance_of(client, partner, world))["available"]  # type: ignore[no-any-return]
