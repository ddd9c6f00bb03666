"""Subscriptions and the API keys whose events they receive, through the API."""

from httpx import AsyncClient

from tests.factories import Partner


async def subscribe(
    client: AsyncClient, partner: Partner, url: str, event_types: list[str] | None = None
) -> dict[str, str]:
    response = await client.post(
        "/v1/webhooks", json={"url": url, "event_types": event_types or []}, headers=partner.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def make_key(client: AsyncClient, partner: Partner, name: str = "k") -> str:
    response = await client.post("/v1/api-keys", json={"name": name}, headers=partner.headers)
    assert response.status_code == 201
    return response.json()["data"]["id"]  # type: ignore[no-any-return]
