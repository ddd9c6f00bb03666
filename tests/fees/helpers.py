"""Shared set-up for fee tests: a program with a product, a funded cardholder, and a way to
write fee schedules as ops do."""

from typing import Any

from httpx import AsyncClient

from tests.factories import bearer


async def set_schedule(
    client: AsyncClient, token: str, fees: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/admin/fee-schedules", json={"fees": fees, **extra}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def set_policy(client: AsyncClient, token: str, **policy: Any) -> None:
    response = await client.patch("/v1/admin/program-settings", json=policy, headers=bearer(token))
    assert response.status_code == 200, response.text


async def fees_of(client: AsyncClient, headers: dict[str, str], **filters: str) -> list[Any]:
    response = await client.get("/v1/fees", params={"limit": 100, **filters}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def eur(amount: int) -> dict[str, Any]:
    return {"EUR": {"fixed": amount}}
