"""Money under contention, on PostgreSQL, with requests that really run at the same time."""

import asyncio
from collections import Counter
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from cardcore.db import create_sessionmaker
from cardcore.ledger.verify import verify
from tests.balances.helpers import open_balance, reload
from tests.factories import Partner, fund_partner, make_partner

# Hundreds of requests racing in committed transactions.
pytestmark = pytest.mark.slow


async def _setup(
    app: FastAPI, engine: AsyncEngine, partner_funds: int
) -> tuple[Partner, AsyncClient]:
    async with create_sessionmaker(engine)() as session:
        partner = await make_partner(session, "Contention")
        await fund_partner(session, partner, partner_funds)
    client = AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore", timeout=120)
    return partner, client


async def _verified(engine: AsyncEngine) -> None:
    async with create_sessionmaker(engine)() as session:
        assert await verify(session) == []


async def _balance(client: AsyncClient, partner: Partner, balance_id: str) -> dict[str, Any]:
    return (await client.get(f"/v1/balances/{balance_id}", headers=partner.headers)).json()["data"]  # type: ignore[no-any-return]


async def test_200_debits_against_funds_for_50(committed_app: FastAPI, engine: AsyncEngine) -> None:
    partner, client = await _setup(committed_app, engine, 5_000)
    async with client:
        source = await open_balance(client, partner)
        target = await open_balance(client, partner)
        assert (await reload(client, partner, source["id"], 5_000)).status_code == 200

        async def debit() -> int:
            response = await client.post(
                "/v1/transfers",
                json={
                    "from_balance_id": source["id"],
                    "to_balance_id": target["id"],
                    "amount": 100,
                    "currency": "EUR",
                },
                headers=partner.headers,
            )
            if response.status_code == 409:
                assert response.json()["code"] == "INSUFFICIENT_FUNDS"
            return response.status_code

        statuses = Counter(await asyncio.gather(*(debit() for _ in range(200))))
        assert statuses == {201: 50, 409: 150}
        after = await _balance(client, partner, source["id"])
        assert (after["total"], after["available"]) == (0, 0)
        assert (await _balance(client, partner, target["id"]))["total"] == 5_000
    await _verified(engine)


async def test_opposite_transfers_and_reloads_never_deadlock(
    committed_app: FastAPI, engine: AsyncEngine
) -> None:
    partner, client = await _setup(committed_app, engine, 100_000)
    async with client:
        a = await open_balance(client, partner)
        b = await open_balance(client, partner)
        for balance in (a, b):
            await reload(client, partner, balance["id"], 5_000)

        async def move(source: str, target: str) -> int:
            response = await client.post(
                "/v1/transfers",
                json={
                    "from_balance_id": source,
                    "to_balance_id": target,
                    "amount": 10,
                    "currency": "EUR",
                },
                headers=partner.headers,
            )
            return response.status_code

        async def top_up(balance: str) -> int:
            return (await reload(client, partner, balance, 7)).status_code

        work = [move(a["id"], b["id"]) for _ in range(60)] + [
            move(b["id"], a["id"]) for _ in range(60)
        ]
        work += [top_up(a["id"]) for _ in range(20)] + [top_up(b["id"]) for _ in range(20)]
        statuses = Counter(await asyncio.gather(*work))
        assert statuses == {201: 120, 200: 40}, "no deadlock, no 500"
        total = (await _balance(client, partner, a["id"]))["total"] + (
            await _balance(client, partner, b["id"])
        )["total"]
        assert total == 10_000 + 40 * 7
    await _verified(engine)


async def test_a_reload_replayed_50_times_at_once_moves_money_once(
    committed_app: FastAPI, engine: AsyncEngine
) -> None:
    partner, client = await _setup(committed_app, engine, 10_000)
    async with client:
        balance = await open_balance(client, partner)

        async def attempt() -> tuple[int, str | None]:
            response = await reload(
                client, partner, balance["id"], 1_234, **{"Idempotency-Key": "reload-once"}
            )
            return response.status_code, response.headers.get("Idempotent-Replayed")

        results = await asyncio.gather(*(attempt() for _ in range(50)))
        statuses = Counter(status for status, _ in results)
        assert set(statuses) <= {200, 409}
        assert statuses[200] >= 1
        assert [replayed for status, replayed in results if status == 200].count(None) == 1, (
            "one original"
        )
        assert (await _balance(client, partner, balance["id"]))["total"] == 1_234
        # Retried after the dust settles, every answer is the stored one.
        late = await reload(
            client, partner, balance["id"], 1_234, **{"Idempotency-Key": "reload-once"}
        )
        assert late.headers["Idempotent-Replayed"] == "true"
        assert (await _balance(client, partner, balance["id"]))["total"] == 1_234
    await _verified(engine)
