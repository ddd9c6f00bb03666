from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.balances import service
from cardcore.models import PartnerBalance
from tests.conftest import Partner


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


async def fund_partner(
    session: AsyncSession,
    partner: Partner,
    amount: int,
    currency: str = "EUR",
    threshold: int | None = None,
) -> PartnerBalance:
    credit = await service.create_partner_balance(
        session,
        program_id=partner.program_id,
        type="CREDIT",
        currency=currency,
        low_balance_threshold=threshold,
    )
    if amount:
        await service.reload_partner_balance(session, credit, amount=amount, reference="wire 1")
    await session.commit()
    return credit


async def reload(
    client: AsyncClient, partner: Partner, balance_id: str, amount: int, **headers: str
):  # type: ignore[no-untyped-def]
    return await client.post(
        f"/v1/balances/{balance_id}/reload",
        json={"amount": amount, "currency": "EUR"},
        headers={**partner.headers, **headers},
    )
