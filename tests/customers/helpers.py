from typing import Any

from httpx import AsyncClient

from tests.conftest import Partner

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
PDF = b"%PDF-1.7\n" + b"\x00" * 100

PERSONAL = {
    "first_name": "Zofia",
    "middle_name": "Maria",
    "last_name": "Kowalska",
    "date_of_birth": "1990-04-01",
    "nationality": "PL",
    "national_id_type": "NATIONAL_ID",
    "national_id_number": "ABC 123456",
}
ADDRESS = {
    "type": "RESIDENTIAL",
    "line1": "ul. Marszałkowska 1",
    "city": "Warszawa",
    "postal_code": "00-001",
    "state": "14",
    "country": "pl",
}


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
):  # type: ignore[no-untyped-def]
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
