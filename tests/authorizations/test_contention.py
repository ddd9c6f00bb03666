"""500 authorizations at once on one card whose balance covers exactly 100 of them."""

import asyncio
from collections import Counter

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from cardcore.db import create_sessionmaker
from cardcore.ledger.verify import verify
from tests.factories import new_world

# Hundreds of requests racing in committed transactions.
pytestmark = pytest.mark.slow


async def test_500_concurrent_authorizations_funds_for_100(
    committed_app: FastAPI, engine: AsyncEngine
) -> None:
    world = await new_world(committed_app, "Contention", [10_000])
    partner, card = world.partner, world.card
    async with AsyncClient(
        transport=ASGITransport(app=committed_app), base_url="http://cardcore", timeout=300
    ) as client:

        async def attempt(n: int) -> str:
            response = await client.post(
                "/v1/network/authorizations",
                json={
                    "card_id": card.id,
                    "amount": 100,
                    "currency": "EUR",
                    "merchant": {"mcc": "5411", "country": "PL"},
                    "channel": "POS",
                    "entry_mode": "CHIP",
                    "network": {"network_transaction_id": f"c-{n}"},
                },
                headers=world.network.headers,
            )
            assert response.status_code == 200, response.text
            return response.json()["response_code"]  # type: ignore[no-any-return]

        codes = Counter(await asyncio.gather(*(attempt(n) for n in range(500))))
        assert codes == {"00": 100, "51": 400}
        balance = (
            await client.get(f"/v1/balances/{card.balance_id}", headers=partner.headers)
        ).json()["data"]
        assert (balance["available"], balance["pending"]) == (0, 10_000)
    async with create_sessionmaker(engine)() as session:
        assert await verify(session) == []


async def test_racing_clearings_and_reversals_resolve_a_hold_once(
    committed_app: FastAPI, engine: AsyncEngine
) -> None:
    world = await new_world(committed_app, "Race", [5_000])
    partner, card, network = world.partner, world.card, world.network.headers
    async with AsyncClient(
        transport=ASGITransport(app=committed_app), base_url="http://cardcore", timeout=300
    ) as client:
        hold = (
            await client.post(
                "/v1/network/authorizations",
                json={
                    "card_id": card.id,
                    "amount": 1_000,
                    "currency": "EUR",
                    "merchant": {"mcc": "5411", "country": "PL"},
                    "channel": "POS",
                    "entry_mode": "CHIP",
                    "network": {"network_transaction_id": "race-auth"},
                },
                headers=network,
            )
        ).json()

        async def settle(n: int) -> int:
            path = "/v1/network/clearings" if n % 2 else "/v1/network/reversals"
            response = await client.post(
                path,
                json={
                    "authorization_id": hold["authorization_id"],
                    "amount": 1_000,
                    "network": {"network_transaction_id": f"race-{n}"},
                },
                headers=network,
            )
            return response.status_code

        statuses = Counter(await asyncio.gather(*(settle(n) for n in range(20))))
        assert statuses == {200: 1, 409: 19}
        balance = (
            await client.get(f"/v1/balances/{card.balance_id}", headers=partner.headers)
        ).json()["data"]
        assert balance["pending"] == 0
        assert balance["total"] in (4_000, 5_000)
    async with create_sessionmaker(engine)() as session:
        assert await verify(session) == []
