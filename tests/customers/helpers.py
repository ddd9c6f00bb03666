"""KYC through the API: users, documents, everything a review needs."""

from typing import Any

from httpx import AsyncClient, Response

from tests.factories import ADDRESS, PERSONAL, Partner

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
PDF = b"%PDF-1.7\n" + b"\x00" * 100


async def create_user(client: AsyncClient, partner: Partner, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/users", json=body, headers=partner.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def upload(
    client: AsyncClient,
    partner: Partner,
    user_id: str,
    type: str,
    side: str | None = None,
    content: bytes = JPEG,
    content_type: str = "image/jpeg",
) -> Response:
    data = {"type": type, **({"side": side} if side else {})}
    return await client.post(
        f"/v1/users/{user_id}/kyc/documents",
        data=data,
        files={"file": ("doc", content, content_type)},
        headers=partner.headers,
    )


async def complete_kyc(client: AsyncClient, partner: Partner, user_id: str) -> None:
    """Everything a review needs."""
    headers = partner.headers
    assert (
        await client.put(f"/v1/users/{user_id}/kyc/personal", json=PERSONAL, headers=headers)
    ).status_code == 200
    assert (
        await client.post(f"/v1/users/{user_id}/kyc/addresses", json=ADDRESS, headers=headers)
    ).status_code == 201
    assert (await upload(client, partner, user_id, "passport", "front")).status_code == 201
    assert (
        await upload(client, partner, user_id, "selfie", content=PNG, content_type="image/png")
    ).status_code == 201
