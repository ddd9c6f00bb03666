"""Balances through the API: an approved user's balance opened, a balance reloaded."""

from typing import Any

from httpx import AsyncClient, Response

from tests.factories import Partner


async def approved_user(client: AsyncClient, partner: Partner) -> str:
    user = (await client.post("/v1/users", json={}, headers=partner.headers)).json()["data"]
    decided = await client.post(
        f"/v1/users/{user['id']}/kyc/decision",
        json={"decision": "APPROVED"},
        headers=partner.headers,
    )
    assert decided.status_code == 200
    return user["id"]  # type: ignore[no-any-return]


async def open_balance(
    client: AsyncClient, partner: Partner, currency: str = "EUR"
) -> dict[str, Any]:
    user_id = await approved_user(client, partner)
    response = await client.post(
        "/v1/balances", json={"user_id": user_id, "currency": currency}, headers=partner.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def reload(
    client: AsyncClient, partner: Partner, balance_id: str, amount: int, **headers: str
) -> Response:
    return await client.post(
        f"/v1/balances/{balance_id}/reload",
        json={"amount": amount, "currency": "EUR"},
        headers={**partner.headers, **headers},
    )
