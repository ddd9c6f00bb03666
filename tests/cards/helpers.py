import asyncio
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.app import create_app
from cardcore.cli import alembic_config
from cardcore.config import Settings
from cardcore.db import create_engine, create_sessionmaker
from tests.auth.helpers import admin_token, bearer, make_admin
from tests.balances.helpers import fund_partner
from tests.conftest import Partner, make_partner
from tests.customers.helpers import ADDRESS, PERSONAL
from tests.kit.jose import encrypted_post

PRODUCT = {
    "name": "Classic",
    "network": "VISA",
    "bin": "45717360",
    "form_factors": ["VIRTUAL", "PHYSICAL"],
    "kind": "DEBIT",
    "currency": "EUR",
}
DELIVERY = {k: v for k, v in ADDRESS.items() if k != "type"}


async def ops_token(
    client: AsyncClient, session: AsyncSession, partner: Partner, role: str = "admin"
) -> str:
    await make_admin(session, partner, role)
    return await admin_token(client, partner, role)


async def make_product(client: AsyncClient, token: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/admin/products", json={**PRODUCT, **overrides}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def cardholder(
    client: AsyncClient, partner: Partner, *, approve: bool = True, phone: str = "+48601234567"
) -> dict[str, str]:
    user = (await client.post("/v1/users", json={"phone": phone}, headers=partner.headers)).json()[
        "data"
    ]
    await client.put(f"/v1/users/{user['id']}/kyc/personal", json=PERSONAL, headers=partner.headers)
    out = {"user_id": user["id"]}
    if approve:
        await client.post(
            f"/v1/users/{user['id']}/kyc/decision",
            json={"decision": "APPROVED"},
            headers=partner.headers,
        )
        balance = await client.post(
            "/v1/balances", json={"user_id": user["id"], "currency": "EUR"}, headers=partner.headers
        )
        out["balance_id"] = balance.json()["data"]["id"]
    return out


async def setup_cards(
    client: AsyncClient, session: AsyncSession, partner: Partner
) -> dict[str, Any]:
    await fund_partner(session, partner, 1_000_000)
    token = await ops_token(client, session, partner)
    product = await make_product(client, token)
    holder = await cardholder(client, partner)
    return {"token": token, "product": product, **holder}


async def issue(client: AsyncClient, partner: Partner, setup: dict[str, Any], **body: Any):  # type: ignore[no-untyped-def]
    payload = {
        "type": "VIRTUAL",
        "product_id": setup["product"]["id"],
        "user_id": setup["user_id"],
        "balance_id": setup.get("balance_id"),
        **body,
    }
    return await client.post("/v1/cards", json=payload, headers=partner.headers)


async def issue_encrypted(
    client: AsyncClient, partner: Partner, setup: dict[str, Any], query: str = "", **body: Any
):  # type: ignore[no-untyped-def]
    """POST /v1/cards with the body as a JWE: the only way a PIN is taken at issue."""
    payload = {
        "type": "VIRTUAL",
        "product_id": setup["product"]["id"],
        "user_id": setup["user_id"],
        "balance_id": setup.get("balance_id"),
        **body,
    }
    return await encrypted_post(client, f"/v1/cards{query}", payload, partner.headers)


async def cards_at_head(url: URL, settings: Settings, count: int) -> tuple[str, list[str]]:
    """A program with `count` ACTIVE virtual cards, made through the API at head."""
    engine = create_engine(url, settings)
    maker = create_sessionmaker(engine)
    app = create_app(settings, sessionmaker=maker)
    try:
        async with (
            AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore") as client,
            maker() as session,
        ):
            partner = await make_partner(session, "Before a migration")
            setup = await setup_cards(client, session, partner)
            cards = []
            for _ in range(count):
                issued = await issue(client, partner, setup)
                assert issued.status_code == 201, issued.text
                cards.append(issued.json()["data"]["id"])
            return partner.program_id, cards
    finally:
        await engine.dispose()


async def down_before(url: URL, revision: str) -> str:
    """The database migrated down to just before `revision`; that revision's predecessor."""
    config = alembic_config(url)
    before = ScriptDirectory.from_config(config).get_revision(revision).down_revision
    assert isinstance(before, str)
    await asyncio.to_thread(command.downgrade, config, before)
    return before
