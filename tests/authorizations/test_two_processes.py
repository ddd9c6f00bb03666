"""500 authorizations at once on one card whose balance covers exactly 100 of them, spread over
two `cardcore serve` processes on the same PostgreSQL: only the database can keep them honest."""

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from cardcore.config import Settings
from cardcore.db import create_sessionmaker
from cardcore.ledger.verify import verify
from tests.authorizations.network import authorization, balance
from tests.authorizations.servers import servers
from tests.factories import new_world

# Two `cardcore serve` processes.
pytestmark = pytest.mark.slow

ATTEMPTS, AMOUNT, FUNDS = 500, 100, 10_000


async def test_500_authorizations_across_two_server_processes(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    world = await new_world(committed_app, "Two processes", [FUNDS])
    card = world.card

    async with servers(settings, tmp_path, 2) as running:
        urls = [server.url for server in running]
        # One connection per request, none kept: a kept one could be closed by the server's
        # keep-alive timeout just as it is reused.
        limits = httpx.Limits(max_connections=ATTEMPTS, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=300, limits=limits) as http:

            async def attempt(n: int) -> dict[str, Any]:
                response = await http.post(
                    f"{urls[n % 2]}/v1/network/authorizations",
                    json=authorization(card.id, AMOUNT, f"two-{n}"),
                    headers=world.network.headers,
                )
                assert response.status_code == 200, response.text
                return response.json()  # type: ignore[no-any-return]

            answers = await asyncio.gather(*(attempt(n) for n in range(ATTEMPTS)))

            codes = Counter(a["response_code"] for a in answers)
            assert codes == {"00": FUNDS // AMOUNT, "51": ATTEMPTS - FUNDS // AMOUNT}
            approved = [a for a in answers if a["response_code"] == "00"]
            assert all(a["approved"] and a["held_amount"] == AMOUNT for a in approved)
            # Each approval saw the balance one step lower than the one before it: every step
            # from 9,900 down to 0 taken exactly once, none below zero.
            seen = sorted(a["available_balance"] for a in approved)
            assert seen == list(range(0, FUNDS, AMOUNT))
            # A decline means nothing was left.
            declined = [a for a in answers if a["response_code"] == "51"]
            assert {
                (a["approved"], a["held_amount"], a["available_balance"]) for a in declined
            } == {(False, 0, 0)}
            assert len({a["authorization_id"] for a in answers}) == ATTEMPTS

            for url in urls:
                response = await http.get(
                    f"{url}/v1/balances/{card.balance_id}", headers=world.partner.headers
                )
                assert response.status_code == 200, response.text
                got = response.json()["data"]
                assert (got["total"], got["available"], got["pending"]) == (FUNDS, 0, FUNDS)

    async with AsyncClient(
        transport=ASGITransport(app=committed_app), base_url="http://cardcore"
    ) as local:
        assert (await balance(local, world.partner, card.balance_id))["available"] == 0
    async with create_sessionmaker(engine)() as session:
        assert await verify(session) == []
