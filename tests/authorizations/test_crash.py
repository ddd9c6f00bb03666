"""`cardcore serve` killed (SIGKILL) while authorizations stream at it from several clients.

What the network was told stands: every approval a client received is in the database, with its
hold, its network message and its outbox event. And what the database kept is whole: each
authorization has all its parts or none, whether or not its answer got out before the crash; each
balance is its funding less what its authorizations hold; the ledger verifies. A restarted server
answers a retransmission of an approval with the first answer.

Only the HTTP API and the tables are used, never the authorization service's functions: the test
must hold for any implementation of the path.
"""

import asyncio
import itertools
import re
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from cardcore.config import Settings
from cardcore.db import create_sessionmaker
from cardcore.ledger.verify import verify
from cardcore.models import (
    Balance,
    CardSpend,
    CardTransaction,
    CardTransactionEvent,
    Event,
    LedgerAccount,
    LedgerAccountDelta,
    LedgerTransfer,
)
from tests.authorizations.network import authorization, balance
from tests.authorizations.servers import Server, crash, servers
from tests.factories import World, new_world

# A `cardcore serve` process killed and restarted.
pytestmark = pytest.mark.slow

CLIENTS = 12
CARDS = 4
FUNDING = 100_000  # per card: hundreds of the stream's authorizations, so each is approved
KILL_AFTER = 100  # answers
# Fixed width, so one id is never part of another: a network key names its id whatever the
# key's format.
NETWORK_ID = re.compile(r"crash-\d{2}-\d{5}")


@dataclass
class Stream:
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # network id: body
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The connection broke after the request went out: the server may or may not have acted.
    unknown: set[str] = field(default_factory=set)
    # The connection was refused: no server ever read the request.
    refused: set[str] = field(default_factory=set)
    killed: bool = False


async def stream_until_crash(server: Server, world: World) -> Stream:
    """CLIENTS clients each send authorizations one after another until their connection fails;
    the one that receives answer number KILL_AFTER kills the server, at once, while the others
    wait on theirs."""
    stream = Stream()
    # A connection per request: after the kill, a refused connection proves its request unread.
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=20, limits=limits) as http:

        async def client(c: int) -> None:
            for seq in itertools.count():
                network_id = f"crash-{c:02d}-{seq:05d}"
                card = world.cards[(c + seq) % CARDS]
                body = authorization(card.id, 100 + (7 * c + seq) % 100, network_id)
                stream.sent[network_id] = body
                try:
                    response = await http.post(
                        "/v1/network/authorizations", json=body, headers=world.network.headers
                    )
                except httpx.ConnectError:
                    stream.refused.add(network_id)
                    return
                except httpx.TransportError:
                    stream.unknown.add(network_id)
                    return
                assert response.status_code == 200, response.text
                stream.answers[network_id] = response.json()
                if len(stream.answers) >= KILL_AFTER and not stream.killed:
                    stream.killed = True
                    crash(server)  # no await before it: every other client is mid-request

        async with asyncio.timeout(60), asyncio.TaskGroup() as clients:
            for c in range(CLIENTS):
                clients.create_task(client(c))
    return stream


async def client_backends(monitor: AsyncConnection) -> set[int]:
    result = await monitor.execute(
        text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
    )
    return set(result.scalars())


async def wait_until_gone(monitor: AsyncConnection, ours: set[int]) -> None:
    """Until PostgreSQL has ended every backend but the test's own: until then a killed
    server's transaction may still be open (or committing), and the books not final."""
    for _ in range(400):
        if await client_backends(monitor) <= ours:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the killed server's database connections did not go away")


async def check_books(
    session: AsyncSession, world: World, before: set[str], sent: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """Every card transaction of the program, whole: PENDING with its hold, its network message
    and its outbox event, each of them once; nothing held, messaged or announced without one;
    each balance its funding less its holds; the ledger verified. Returns the network id of each
    transaction: {network id: transaction id}."""
    program = world.partner.program_id
    accounts = dict(
        (
            await session.execute(
                select(Balance.id, Balance.ledger_account_id).where(
                    Balance.id.in_([card.balance_id for card in world.cards])
                )
            )
        ).all()
    )
    transactions = {
        row.id: row
        for row in (
            await session.execute(
                select(CardTransaction).where(CardTransaction.program_id == program)
            )
        ).scalars()
    }
    messages = (
        (
            await session.execute(
                select(CardTransactionEvent).where(CardTransactionEvent.program_id == program)
            )
        )
        .scalars()
        .all()
    )
    # Whatever moved money since the world was made: the stream's holds, and nothing else.
    transfers = {
        row.id: row
        for row in (
            await session.execute(
                select(LedgerTransfer).where(
                    LedgerTransfer.program_id == program, LedgerTransfer.id.not_in(before)
                )
            )
        ).scalars()
    }
    events = (
        (
            await session.execute(
                select(Event).where(
                    Event.program_id == program, Event.type == "authorization.decided"
                )
            )
        )
        .scalars()
        .all()
    )

    by_network_id: dict[str, str] = {}
    for message in messages:
        assert message.kind == "authorization", message.kind
        assert message.transaction_id in transactions, "a network message without its transaction"
        (network_id,) = NETWORK_ID.findall(message.network_key)
        assert network_id in sent, network_id
        assert network_id not in by_network_id, f"{network_id} acted on twice"
        by_network_id[network_id] = message.transaction_id
    assert Counter(by_network_id.values()) == Counter(transactions.keys()), (
        "each transaction has exactly one network message"
    )
    assert Counter(event.object_id for event in events) == Counter(transactions.keys()), (
        "each transaction has exactly one authorization.decided event, and no event is without"
    )
    assert all(event.data["approved"] for event in events)
    held_by = {row.hold_transfer_id: row for row in transactions.values() if row.hold_transfer_id}
    assert held_by.keys() == transfers.keys(), (
        "each transaction has its hold, and the ledger holds nothing for no transaction"
    )

    held: Counter[str] = Counter()
    spent: Counter[str] = Counter()
    for network_id, transaction_id in by_network_id.items():
        row, body = transactions[transaction_id], sent[network_id]
        assert (row.status, row.response_code) == ("PENDING", "00"), (row.status, row.response_code)
        assert (row.card_id, row.amount, row.held_amount) == (
            body["card_id"],
            body["amount"],
            body["amount"],
        )
        hold = transfers[row.hold_transfer_id]
        assert (hold.kind, hold.amount, hold.debit_account_id) == (
            "pending",
            row.held_amount,
            accounts[row.balance_id],
        )
        held[row.balance_id] += row.held_amount
        spent[row.card_id] += row.amount

    for card in world.cards:
        account = accounts[card.balance_id]
        totals = (
            await session.execute(
                select(
                    *(
                        getattr(LedgerAccount, column)
                        + select(func.coalesce(func.sum(getattr(LedgerAccountDelta, column)), 0))
                        .where(LedgerAccountDelta.account_id == account)
                        .scalar_subquery()
                        for column in (
                            "debits_pending",
                            "debits_posted",
                            "credits_pending",
                            "credits_posted",
                        )
                    )
                ).where(LedgerAccount.id == account)
            )
        ).one()
        debits_pending, debits_posted, credits_pending, credits_posted = totals
        assert (credits_posted - debits_posted, debits_pending, credits_pending) == (
            FUNDING,
            held[card.balance_id],
            0,
        ), card
        # A spend counted for an authorization that rolled back would eat into the card's limits.
        counted = (
            await session.execute(
                select(
                    CardSpend.day_amount,
                    CardSpend.day_count,
                    CardSpend.lifetime_amount,
                    CardSpend.lifetime_count,
                ).where(CardSpend.card_id == card.id, CardSpend.channel == "ALL")
            )
        ).all()
        count = sum(1 for row in transactions.values() if row.card_id == card.id)
        # (The lifetime's: the day's may have begun afresh at midnight during the stream.)
        assert [(amount, n) for _, _, amount, n in counted] == (
            [(spent[card.id], count)] if count else []
        ), card

    assert await verify(session) == []
    return by_network_id


async def check_balances(app: FastAPI, world: World, sent: dict[str, dict[str, Any]]) -> None:
    """What the partner sees: each balance's total is its funding, its pending what was held."""
    held: Counter[str] = Counter()
    for body in sent.values():
        held[body["card_id"]] += body["amount"]
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore") as local:
        for card in world.cards:
            got = await balance(local, world.partner, card.balance_id)
            assert (got["total"], got["pending"], got["available"]) == (
                FUNDING,
                held[card.id],
                FUNDING - held[card.id],
            )


async def test_killed_server_leaves_every_authorization_whole(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    sessions = create_sessionmaker(engine)
    world = await new_world(committed_app, "Crash", [FUNDING] * CARDS)
    async with sessions() as session:
        before = set(
            (
                await session.execute(
                    select(LedgerTransfer.id).where(
                        LedgerTransfer.program_id == world.partner.program_id
                    )
                )
            ).scalars()
        )

    async with engine.connect() as monitor:
        # Each poll its own transaction: pg_stat_activity is read once per transaction.
        monitor = await monitor.execution_options(isolation_level="AUTOCOMMIT")
        ours = await client_backends(monitor)
        async with servers(settings, tmp_path, 1) as (server,):
            stream = await stream_until_crash(server, world)
            assert await asyncio.wait_for(server.process.wait(), 10) == -signal.SIGKILL
        await wait_until_gone(monitor, ours)

    # The kill came mid-stream: answers before it, requests cut off by it.
    assert stream.killed
    assert len(stream.answers) >= KILL_AFTER
    assert stream.unknown, "no request was in flight when the server died"
    assert len(stream.sent) == len(stream.answers) + len(stream.unknown) + len(stream.refused)
    assert {a["response_code"] for a in stream.answers.values()} == {"00"}

    async with sessions() as session:
        found = await check_books(session, world, before, stream.sent)
    for network_id, answer in stream.answers.items():
        assert found.get(network_id) == answer["authorization_id"], network_id
    assert not stream.refused & found.keys(), "a request no server read was acted on"
    # What the database kept beyond the answers: authorizations whose answer the crash lost.
    print(
        f"{len(stream.answers)} answered, {len(stream.unknown)} cut off "
        f"({len(stream.unknown & found.keys())} of them committed), {len(stream.refused)} refused"
    )
    await check_balances(committed_app, world, {n: stream.sent[n] for n in found})

    # The network retransmits what it got no answer to, and may retransmit the rest: a restarted
    # server gives the first answer to each approval, and acts once on the others.
    async with (
        servers(settings, tmp_path, 1, name="restarted") as (server,),
        httpx.AsyncClient(
            base_url=server.url,
            timeout=20,
            limits=httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=0),
        ) as http,
    ):

        async def again(network_id: str) -> dict[str, Any]:
            response = await http.post(
                "/v1/network/authorizations",
                json=stream.sent[network_id],
                headers=world.network.headers,
            )
            assert response.status_code == 200, response.text
            return response.json()  # type: ignore[no-any-return]

        network_ids = list(stream.sent)
        answers = dict(
            zip(network_ids, await asyncio.gather(*map(again, network_ids)), strict=True)
        )
    for network_id, first in stream.answers.items():
        assert answers[network_id] == first, network_id
    for network_id in stream.unknown | stream.refused:
        assert answers[network_id]["response_code"] == "00"
        if network_id in found:
            assert answers[network_id]["authorization_id"] == found[network_id]

    async with sessions() as session:
        final = await check_books(session, world, before, stream.sent)
    assert final == {n: answer["authorization_id"] for n, answer in answers.items()}
    await check_balances(committed_app, world, stream.sent)
