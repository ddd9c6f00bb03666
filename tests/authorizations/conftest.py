"""The `world` every authorization test starts from: a card on a balance of 100.00 EUR and the
card processor's network key."""

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import bearer
from tests.balances.helpers import reload
from tests.cards.helpers import issue, setup_cards
from tests.conftest import Partner


@pytest.fixture
async def world(client: AsyncClient, session: AsyncSession, partner: Partner) -> dict:  # type: ignore[type-arg]
    return await make_world(client, session, partner)


async def make_world(client: AsyncClient, session: AsyncSession, partner: Partner) -> dict:  # type: ignore[type-arg]
    setup = await setup_cards(client, session, partner)
    await reload(client, partner, setup["balance_id"], 10_000)
    card = (await issue(client, partner, setup)).json()["data"]
    key = await client.post(
        "/v1/admin/network-keys", json={"name": "processor"}, headers=bearer(setup["token"])
    )
    return {**setup, "card": card, "network": {"X-API-Key": key.json()["data"]["secret"]}}
