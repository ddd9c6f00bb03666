"""500 authorizations at once on one card whose balance covers exactly 100 of them."""

import asyncio
from collections import Counter

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from cardcore.db import create_sessionmaker
from cardcore.ledger.verify import verify
from tests.balances.helpers import reload
from tests.cards.helpers import issue, setup_cards
from tests.conftest import make_partner


async def test_500_concurrent_authorizations_funds_for_100(
    committed_app: FastAPI, engine: AsyncEngine
) -> None:
    async with create_sessionmaker(engine)() as session:
        partner = await make_partner(session, "Contention")
        async with AsyncClient(
            transport=ASGITransport(app=committed_app), base_url="http://cardcore", timeout=300
        ) as client:
            setup = await setup_cards(client, session, partner)
            await session.commit()
            assert (await reload(client, partner, setup["balance_id"], 10_000)).status_code == 200
            card = (await issue(client, partner, setup)).json()["data"]
            key = (
                await client.post(
                    "/v1/admin/network-keys",
                    json={"name": "p"},
                    headers={"Authorization": f"Bearer {setup['token']}"},
                )
            ).json()["data"]["secret"]

            async def attempt(n: int) -> str:
                response = await client.post(
                    "/v1/network/authorizations",
                    json={
                        "card_id": card["id"],
                        "amount": 100,
                        "currency": "EUR",
                        "merchant": {"mcc": "5411", "country": "PL"},
                        "channel": "POS",
                        "entry_mode": "CHIP",
                        "network": {"network_transaction_id": f"c-{n}"},
                    },
                    headers={"X-API-Key": key},
                )
                assert response.status_code == 200, response.text
                return response.json()["response_code"]  # type: ignore[no-any-return]

            codes = Counter(await asyncio.gather(*(attempt(n) for n in range(500))))
            assert codes == {"00": 100, "51": 400}
            balance = (
                await client.get(f"/v1/balances/{setup['balance_id']}", headers=partner.headers)
            ).json()["data"]
            assert (balance["available"], balance["pending"]) == (0, 10_000)
    async with create_sessionmaker(engine)() as session:
        assert await verify(session) == []


async def test_racing_clearings_and_reversals_resolve_a_hold_once(
    committed_app: FastAPI, engine: AsyncEngine
) -> None:
    async with create_sessionmaker(engine)() as session:
        partner = await make_partner(session, "Race")
        async with AsyncClient(
            transport=ASGITransport(app=committed_app), base_url="http://cardcore", timeout=300
        ) as client:
            setup = await setup_cards(client, session, partner)
            await session.commit()
            await reload(client, partner, setup["balance_id"], 5_000)
            card = (await issue(client, partner, setup)).json()["data"]
            key = (
                await client.post(
                    "/v1/admin/network-keys",
                    json={"name": "p"},
                    headers={"Authorization": f"Bearer {setup['token']}"},
                )
            ).json()["data"]["secret"]
            network = {"X-API-Key": key}
            hold = (
                await client.post(
                    "/v1/network/authorizations",
                    json={
                        "card_id": card["id"],
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
                await client.get(f"/v1/balances/{setup['balance_id']}", headers=partner.headers)
            ).json()["data"]
            assert balance["pending"] == 0
            assert balance["total"] in (4_000, 5_000)
    async with create_sessionmaker(engine)() as session:
        assert await verify(session) == []
