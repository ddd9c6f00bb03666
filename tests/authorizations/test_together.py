"""Messages in flight together are read and written together (store.Together, the
`card_authorization_…_many` and `card_follow_up_…_many` functions): fewer transactions than
messages, and every message's answer what it would have been alone — no overspend, no hold
moved twice, no message recorded twice, one message's failure its own."""

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from cardcore.authorizations import store
from cardcore.config import Settings
from cardcore.db import create_sessionmaker
from cardcore.ledger.verify import verify
from cardcore.models import CardTransactionEvent
from tests.authorizations.network import authorization
from tests.authorizations.own_pool import PATH, close, follow_up_body, own_pool, warm_up
from tests.harness import asyncpg_dsn

# A call: 10 divided by its number; alone it says so, together the batch does.
ONE = "SELECT 10 / $1::int AS value, 'alone' AS way"
MANY = (
    "SELECT t.n::int AS n, 10 / t.divisor AS value, 'together' AS way"
    " FROM unnest($1::together_probe[]) WITH ORDINALITY AS t(divisor, n)"
)


@pytest.fixture
async def probe_pool(scratch_url: URL) -> Any:
    dsn, extra = asyncpg_dsn(scratch_url)
    setup = await asyncpg.connect(dsn, **extra)
    await setup.execute("CREATE TYPE together_probe AS (divisor int)")
    await setup.close()
    pool = await asyncpg.create_pool(dsn, **extra, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def test_calls_waiting_together_go_in_one_transaction(probe_pool: Any) -> None:
    together = store.Together(probe_pool.acquire, ONE, MANY)
    alone = await together.call((5,))
    assert (alone["value"], alone["way"]) == (2, "alone")
    rows = await asyncio.gather(*(together.call((n,)) for n in (1, 2, 5, 10)))
    assert [(row["value"], row["way"]) for row in rows] == [
        (10, "together"),
        (5, "together"),
        (2, "together"),
        (1, "together"),
    ]
    assert (together.transactions, together.calls) == (2, 5)
    await together.closed()


async def test_one_calls_failure_is_its_own(probe_pool: Any) -> None:
    """A batch that fails as a whole is made again call by call: only the failing call fails."""
    together = store.Together(probe_pool.acquire, ONE, MANY)
    outcomes = await asyncio.gather(
        *(together.call((n,)) for n in (5, 0, 2)), return_exceptions=True
    )
    assert outcomes[0]["value"] == 2
    assert outcomes[2]["value"] == 5
    assert isinstance(outcomes[1], asyncpg.DivisionByZeroError)
    # The batch, then each of its three calls alone.
    assert (together.transactions, together.calls) == (4, 6)


async def test_calls_beyond_the_most_wait_for_the_next_transaction(probe_pool: Any) -> None:
    together = store.Together(probe_pool.acquire, ONE, MANY, most=2)
    rows = await asyncio.gather(*(together.call((n,)) for n in (1, 2, 5)))
    assert [row["value"] for row in rows] == [10, 5, 2]
    assert (together.transactions, together.calls) == (2, 3)


# A call that takes its argument's seconds.
SLOW_ONE = "SELECT $1::float8 AS value FROM pg_sleep($1::float8)"
SLOW_MANY = (
    "SELECT t.n::int AS n, t.seconds AS value"
    " FROM unnest($1::float8[]) WITH ORDINALITY AS t(seconds, n), pg_sleep(t.seconds)"
)


@pytest.mark.parametrize(("parallel", "finished"), [(1, [0.5, 0.01]), (2, [0.01, 0.5])])
async def test_a_slow_transaction_holds_up_the_next_call_only_without_a_second_in_flight(
    probe_pool: Any, parallel: int, finished: list[float]
) -> None:
    """With room for a second transaction, a call arriving while the first is slow (a lock
    waited for, a pause) goes at once in its own rather than queueing behind it."""
    together = store.Together(probe_pool.acquire, SLOW_ONE, SLOW_MANY, parallel=parallel)
    order: list[float] = []

    async def call(seconds: float) -> None:
        order.append((await together.call((seconds,)))["value"])

    slow = asyncio.create_task(call(0.5))
    await asyncio.sleep(0.1)
    await call(0.01)
    await slow
    assert order == finished
    assert (together.transactions, together.calls) == (2, 2)
    await together.closed()


async def test_authorizations_in_flight_together(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    """Four messages at once on each of six cards funded for three: exactly three of each
    card's approved, the fourth declined 51, read and written in fewer transactions than
    messages; a message and its retransmission in flight at once get the same answer, byte for
    byte, and one record."""
    app, world, warm_card = await own_pool(committed_app, settings, "Together", 10_000, *[300] * 6)
    cards = [funded.id for funded in world.cards[1:]]
    pooled = app.state.lean_connections.pooled
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore") as c:
            await warm_up(c, world, warm_card, "together")
            reads, writes = pooled.reads.transactions, pooled.writes.transactions
            messages = [
                authorization(card, 100, f"together-{n}-{i}")
                for n, card in enumerate(cards)
                for i in range(4)
            ]
            twice = authorization(warm_card, 1, "together-twice")
            answers = await asyncio.gather(
                *(
                    c.post(PATH, json=m, headers=world.network.headers)
                    for m in [*messages, twice, twice]
                )
            )
    finally:
        await close(app)
    assert all(answer.status_code == 200 for answer in answers)
    assert answers[-1].content == answers[-2].content
    approved = Counter(
        message["card_id"]
        for message, answer in zip(messages, answers, strict=False)
        if answer.json()["approved"]
    )
    assert approved == dict.fromkeys(cards, 3)
    declined = {
        (answer.json()["response_code"], answer.json()["decline_reason"])
        for answer in answers[: len(messages)]
        if not answer.json()["approved"]
    }
    assert declined == {("51", "INSUFFICIENT_FUNDS")}
    # Grouped: fewer transactions than calls (26 messages; a stale write is read again).
    assert pooled.reads.transactions - reads < len(messages) + 2
    assert pooled.writes.transactions - writes < len(messages) + 2
    async with create_sessionmaker(engine)() as session:
        recorded = await session.scalar(
            select(func.count())
            .select_from(CardTransactionEvent)
            .where(CardTransactionEvent.network_key.like("%|together-%"))
        )
        assert recorded == 3 + len(messages) + 1  # the warm-up's, the messages, the twice sent
        assert await verify(session) == []


async def test_follow_ups_in_flight_together(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    """Clearings of six authorizations at once, one of them sent twice, and a reversal and a
    clearing of a seventh at once: every clearing approved and posted once, the twice-sent
    answered the same, byte for byte; of the reversal and the clearing racing for one hold,
    exactly one moves it and the other finds it gone — in fewer transactions than messages."""
    app, world, warm_card = await own_pool(
        committed_app, settings, "Together follow-ups", 10_000, *[500] * 7
    )
    cards = [funded.id for funded in world.cards[1:]]
    pooled = app.state.lean_connections.pooled
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore") as c:
            warmed = await warm_up(c, world, warm_card, "together-follow-ups")
            warm = follow_up_body(warmed["authorization_id"], "together-follow-ups-warm", 10)
            increment = await c.post(
                "/v1/network/incremental-authorizations", json=warm, headers=world.network.headers
            )
            assert increment.json()["approved"], increment.text
            held = []
            for n, card in enumerate(cards):
                message = authorization(card, 300, f"together-held-{n}")
                answer = await c.post(PATH, json=message, headers=world.network.headers)
                assert answer.json()["approved"], answer.text
                held.append(answer.json()["authorization_id"])
            writes = pooled.follow_up_writes.transactions
            clearings = [
                follow_up_body(id_, f"together-clearing-{n}") for n, id_ in enumerate(held)
            ]
            racing = [
                ("/v1/network/reversals", follow_up_body(held[-1], "together-racing-reversal")),
                ("/v1/network/clearings", follow_up_body(held[-1], "together-racing-clearing")),
            ]
            sent = [
                *(("/v1/network/clearings", clearing) for clearing in clearings[:-1]),
                ("/v1/network/clearings", clearings[0]),
                *racing,
            ]
            answers = await asyncio.gather(
                *(c.post(path, json=body, headers=world.network.headers) for path, body in sent)
            )
    finally:
        await close(app)
    for answer in answers[:6]:
        assert answer.json()["approved"], answer.text
        assert answer.json()["held_amount"] == 0
    assert answers[0].content == answers[6].content
    assert sorted(answer.status_code for answer in answers[7:]) == [200, 409]
    assert pooled.follow_up_writes.transactions - writes < len(sent)
    async with create_sessionmaker(engine)() as session:
        recorded = await session.scalar(
            select(func.count())
            .select_from(CardTransactionEvent)
            .where(CardTransactionEvent.network_key.like("%|together-clearing-%"))
        )
        assert recorded == 6
        assert await verify(session) == []
