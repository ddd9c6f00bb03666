"""The lean route (authorizations/lean.py) of authorizations and the clearings, reversals and
increments that follow them: the same answers as the standard route, a network key that stops
working stops at once, four round trips per message."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from cardcore.app import create_app
from cardcore.authorizations import lean, store
from cardcore.config import Settings
from cardcore.db import create_engine, create_sessionmaker
from cardcore.kit.crypto import sha256_digest
from cardcore.ledger.verify import verify
from cardcore.models import ApiKey, AuditLog, Card, CardTransactionEvent, Event, Program
from tests.authorizations.network import authorization, body
from tests.authorizations.own_pool import PATH, close, follow_up_body, own_pool, warm_up
from tests.factories import World, new_world


def _known(world: World) -> bool:
    return sha256_digest(world.network.secret) in lean._KNOWN_KEYS


async def _audited(session: AsyncSession, path: str = PATH) -> int:
    return await session.scalar(  # type: ignore[return-value]
        select(func.count()).select_from(AuditLog).where(AuditLog.path == path)
    )


async def test_a_known_key_goes_lean_with_the_same_answers(
    client: AsyncClient, world: World, session: AsyncSession
) -> None:
    lean._KNOWN_KEYS.clear()
    first = await client.post(PATH, json=body(world), headers=world.network.headers)
    assert first.status_code == 200, first.text
    # The first message of a key in a process takes the standard route, which learns the key.
    assert _known(world)
    assert await _audited(session) == 1
    message = body(world)
    lean_answer = await client.post(PATH, json=message, headers=world.network.headers)
    assert lean_answer.status_code == 200, lean_answer.text
    # The lean route writes no audit row: the network message is the record.
    assert await _audited(session) == 1
    stored = await session.scalar(
        select(CardTransactionEvent).where(
            CardTransactionEvent.transaction_id == lean_answer.json()["authorization_id"]
        )
    )
    assert stored is not None
    assert stored.response == lean_answer.json()
    assert (
        await session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.object_id == lean_answer.json()["authorization_id"])
        )
        == 1
    )
    # A retransmission is answered byte for byte, by either route.
    again = await client.post(PATH, json=message, headers=world.network.headers)
    assert again.content == lean_answer.content
    standard = await client.post(
        PATH, json=message, headers={**world.network.headers, "Idempotency-Key": "retransmitted"}
    )
    assert standard.content == lean_answer.content
    assert lean_answer.json()["available_balance"] == 10_000 - 2 * 1_000
    assert await verify(session) == []


@pytest.mark.parametrize(
    ("path", "amount", "held", "available"),
    [
        ("/v1/network/clearings", 800, 0, 10_000 - 800),
        ("/v1/network/reversals", 300, 700, 10_000 - 700),
        ("/v1/network/incremental-authorizations", 500, 1_500, 10_000 - 1_500),
    ],
)
async def test_follow_ups_go_lean_with_the_same_answers(
    client: AsyncClient,
    world: World,
    session: AsyncSession,
    path: str,
    amount: int,
    held: int,
    available: int,
) -> None:
    lean._KNOWN_KEYS.clear()
    authorized = await client.post(PATH, json=body(world), headers=world.network.headers)
    assert authorized.status_code == 200, authorized.text
    assert _known(world)
    message = follow_up_body(authorized.json()["authorization_id"], f"lean-{path}", amount)
    answer = await client.post(path, json=message, headers=world.network.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["approved"]
    assert answer.json()["held_amount"] == held
    assert answer.json()["available_balance"] == available
    # Served lean: no audit row, the network message is the record, and it says what was sent.
    assert await _audited(session, path) == 0
    stored = await session.scalar(
        select(CardTransactionEvent.response).where(
            CardTransactionEvent.network_key.like("%lean-%")
        )
    )
    assert stored == answer.json()
    again = await client.post(path, json=message, headers=world.network.headers)
    assert again.content == answer.content
    standard = await client.post(
        path, json=message, headers={**world.network.headers, "Idempotency-Key": "retransmitted"}
    )
    assert standard.content == answer.content
    assert await _audited(session, path) == 1
    assert await verify(session) == []


async def test_follow_up_errors_are_the_standard_routes(
    client: AsyncClient, world: World, session: AsyncSession
) -> None:
    lean._KNOWN_KEYS.clear()
    authorized = (await client.post(PATH, json=body(world), headers=world.network.headers)).json()
    clearings = "/v1/network/clearings"
    above = await client.post(
        clearings,
        json=follow_up_body(authorized["authorization_id"], "c-1", 5_000),
        headers=world.network.headers,
    )
    assert above.status_code == 422
    assert above.json()["code"] == "CLEARING_ABOVE_TOLERANCE"
    unknown = await client.post(
        clearings,
        json=follow_up_body("txn_01jd3xk0000000000000000000", "c-2"),
        headers=world.network.headers,
    )
    assert unknown.status_code == 404
    assert (
        await session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.path == clearings, AuditLog.outcome == "failure")
        )
        == 2
    )
    await session.execute(
        update(ApiKey)
        .where(ApiKey.secret_hash == sha256_digest(world.network.secret))
        .values(revoked_at=func.now())
    )
    await session.commit()
    refused = await client.post(
        clearings,
        json=follow_up_body(authorized["authorization_id"], "c-3"),
        headers=world.network.headers,
    )
    assert refused.status_code == 401, refused.text
    assert not _known(world)


async def test_errors_are_the_standard_routes(
    client: AsyncClient, world: World, session: AsyncSession
) -> None:
    await client.post(PATH, json=body(world), headers=world.network.headers)
    assert _known(world)
    invalid = await client.post(PATH, json=body(world, amount=-5), headers=world.network.headers)
    assert invalid.status_code == 422
    assert invalid.json()["code"] == "VALIDATION_ERROR"
    unknown = await client.post(
        PATH,
        json=body(world, card_id="card_01jd3xk0000000000000000000"),
        headers=world.network.headers,
    )
    assert unknown.status_code == 404
    # Failures are audited, as on every route.
    assert (
        await session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.path == PATH, AuditLog.outcome == "failure")
        )
        == 2
    )


@pytest.mark.parametrize("change", ["revoke", "suspend"])
async def test_a_key_stops_working_at_once(
    client: AsyncClient, world: World, session: AsyncSession, change: str
) -> None:
    assert (
        await client.post(PATH, json=body(world), headers=world.network.headers)
    ).status_code == 200
    assert _known(world)
    digest = sha256_digest(world.network.secret)
    if change == "revoke":
        await session.execute(
            update(ApiKey).where(ApiKey.secret_hash == digest).values(revoked_at=func.now())
        )
    else:
        program_id = lean._KNOWN_KEYS[digest][1]
        await session.execute(
            update(Program).where(Program.id == program_id).values(status="SUSPENDED")
        )
    await session.commit()
    refused = await client.post(PATH, json=body(world), headers=world.network.headers)
    assert refused.status_code == (401 if change == "revoke" else 403), refused.text
    assert not _known(world)


async def test_another_programs_card_is_not_found(
    client: AsyncClient, app: FastAPI, world: World, session: AsyncSession
) -> None:
    other = await new_world(app, "Other")
    assert (
        await client.post(PATH, json=body(world), headers=world.network.headers)
    ).status_code == 200
    stolen = await client.post(
        PATH, json=body(world, card_id=other.card.id), headers=world.network.headers
    )
    assert stolen.status_code == 404


async def test_in_a_session_an_authorization_and_its_follow_ups_are_four_round_trips(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    """BEGIN, the read, the write, COMMIT, on an app with a session of its own engine (here of
    one pooled connection, whose every statement is logged while one runs)."""
    world = await new_world(committed_app, "Counted")
    one = create_engine(
        settings.database_url or "",
        settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0}),
    )
    app = create_app(settings, sessionmaker=create_sessionmaker(one))
    sent: list[str] = []
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore") as c:
            message = authorization(world.card.id, 100, "counted-1")
            first = await c.post(PATH, json=message, headers=world.network.headers)
            assert first.json()["approved"], first.text
            # The connection's first follow-up learns the type of the row its read returns.
            warm = follow_up_body(first.json()["authorization_id"], "counted-warm", 10)
            warmed = await c.post(
                "/v1/network/incremental-authorizations", json=warm, headers=world.network.headers
            )
            assert warmed.json()["approved"], warmed.text
            async with one.connect() as probe:
                connection = (await probe.get_raw_connection()).driver_connection

            def log(record: Any) -> None:
                sent.append(record.query)

            connection.add_query_logger(log)
            message = authorization(world.card.id, 100, "counted-2")
            answer = await c.post(PATH, json=message, headers=world.network.headers)
            assert answer.json()["approved"], answer.text
            authorization_id = answer.json()["authorization_id"]
            trips = [list(sent)]
            for path, amount in (
                ("/v1/network/incremental-authorizations", 50),
                ("/v1/network/reversals", 20),
                ("/v1/network/clearings", None),
            ):
                sent.clear()
                ids = f"counted-{path}"
                followed = await c.post(
                    path,
                    json=follow_up_body(authorization_id, ids, amount),
                    headers=world.network.headers,
                )
                assert followed.json()["approved"], followed.text
                trips.append(list(sent))
            connection.remove_query_logger(log)
    finally:
        await one.dispose()
    assert followed.json()["held_amount"] == 0
    for sent, write in zip(trips, ["SELECT refused_account,"] + 3 * ["SELECT stale,"], strict=True):
        assert [" ".join(q.split()[:2]) for q in sent] == [
            "BEGIN;",
            "SELECT key_ok,",
            write,
            "COMMIT;",
        ]


async def test_the_lean_paths_own_connections(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    """An app on its own engine serves the lean path from its own asyncpg pool: the same answers;
    an authorization's or a follow-up's read and write, each a transaction of its own, the read's
    connection given back while the message is decided; whatever it cannot do there (a PIN
    block, a key no longer good) goes the standard way."""
    world = await new_world(committed_app, "Own pool")
    app = create_app(settings.model_copy(update={"run_worker": False}))
    connections = app.state.lean_connections
    assert connections is not None
    sent: list[str] = []
    logging: set[Any] = set()

    def logged(opened: Any) -> Any:
        @asynccontextmanager
        async def opening() -> AsyncIterator[Any]:
            try:
                async with opened() as connection:
                    # Once per pooled connection (it outlives its proxy), so COMMIT is seen too.
                    raw = connection._con
                    if raw not in logging:
                        logging.add(raw)
                        raw.add_query_logger(lambda record: sent.append(record.query))
                    yield connection
            finally:
                sent.append("released")

        return opening

    connections.connection = logged(connections.connection)
    card = world.card.id
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore") as c:
            first = await c.post(
                PATH, json=authorization(card, 100, "own-1"), headers=world.network.headers
            )
            assert first.json()["approved"], first.text
            assert sent == []  # the first message of a key takes the standard route
            # The program's network account was made by that first message, in a transaction
            # still open then: this process learns it on the next, which the lean path leaves
            # (rolled back) to the standard route. Then a new connection learns the types.
            for n in (2, 3):
                warm = authorization(card, 100, f"own-warm-{n}")
                warmed = await c.post(PATH, json=warm, headers=world.network.headers)
                assert warmed.json()["approved"]
            assert [" ".join(q.split()[:2]) for q in sent[-2:]] == [
                "SELECT refused_account,",
                "released",
            ]
            # ... and the type of the row a follow-up's read returns.
            warm = follow_up_body(warmed.json()["authorization_id"], "own-warm-increment", 10)
            warmed = await c.post(
                "/v1/network/incremental-authorizations", json=warm, headers=world.network.headers
            )
            assert warmed.json()["approved"]
            sent.clear()
            message = authorization(card, 250, "own-2")
            answer = await c.post(PATH, json=message, headers=world.network.headers)
            assert answer.json()["approved"], answer.text
            assert answer.json()["available_balance"] == 10_000 - 3 * 100 - 10 - 250
            # The read's connection is given back while the message is decided.
            assert [" ".join(q.split()[:2]) for q in sent] == [
                "SELECT key_ok,",
                "released",
                "SELECT refused_account,",
                "released",
            ]
            again = await c.post(PATH, json=message, headers=world.network.headers)
            assert again.content == answer.content
            sent.clear()
            clearing = follow_up_body(answer.json()["authorization_id"], "own-clearing", 200)
            cleared = await c.post(
                "/v1/network/clearings", json=clearing, headers=world.network.headers
            )
            assert cleared.json()["approved"], cleared.text
            assert cleared.json()["available_balance"] == 10_000 - 3 * 100 - 10 - 200
            assert [" ".join(q.split()[:2]) for q in sent] == [
                "SELECT key_ok,",
                "released",
                "SELECT stale,",
                "released",
            ]
            async with create_sessionmaker(engine)() as session:
                stored = await session.scalar(
                    select(CardTransactionEvent.response).where(
                        CardTransactionEvent.transaction_id == answer.json()["authorization_id"]
                    )
                )
                assert stored == answer.json()
                # A revoked key: the read refuses it, the standard route answers 401.
                await session.execute(
                    update(ApiKey)
                    .where(ApiKey.secret_hash == sha256_digest(world.network.secret))
                    .values(revoked_at=func.now())
                )
                await session.commit()
            refused = await c.post(
                PATH, json=authorization(card, 100, "own-3"), headers=world.network.headers
            )
            assert refused.status_code == 401, refused.text
            async with create_sessionmaker(engine)() as session:
                assert await verify(session) == []
    finally:
        await connections.close()
        await app.state.sessionmaker.kw["bind"].dispose()


def _stale_or_not(
    write: Any, checked: str, meanwhile: Callable[[dict[str, Any]], Awaitable[None]]
) -> tuple[Any, list[bool]]:
    """`write` (store.write or store.write_follow_up) that, the first time it is called after a
    read without the lock (`checked` set), lets `meanwhile` change things and commit first; and
    the list of whether each such call wrote (False: Stale)."""
    writes: list[bool] = []

    async def recorded(connection: Any, **arguments: Any) -> Any:
        if arguments.get(checked) is None:  # the other message's, in its session
            return await write(connection, **arguments)
        if not writes:
            await meanwhile(arguments)
        try:
            written = await write(connection, **arguments)
        except store.Stale:
            writes.append(False)
            raise
        writes.append(True)
        return written

    return recorded, writes


@pytest.mark.parametrize("meanwhile", ["card locked", "card spent"])
async def test_a_decision_on_a_changed_card_is_made_again(
    committed_app: FastAPI,
    engine: AsyncEngine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    meanwhile: str,
) -> None:
    """The own pool's authorization reads without the card's lock; when the card changes
    before its write (here: locked, or authorized by another message, each committed in between),
    the write records nothing and the message is read and decided again."""
    app, world, card = await own_pool(committed_app, settings, f"Changed {meanwhile}")

    async def change(arguments: dict[str, Any]) -> None:
        if meanwhile == "card locked":
            async with create_sessionmaker(engine)() as other:
                await other.execute(update(Card).where(Card.id == card).values(status="LOCKED"))
                await other.commit()
            return
        other_message = authorization(card, 300, f"{meanwhile}-other")
        async with AsyncClient(
            transport=ASGITransport(app=committed_app), base_url="http://cardcore"
        ) as c:
            other_answer = await c.post(PATH, json=other_message, headers=world.network.headers)
            assert other_answer.json()["approved"]

    write, writes = _stale_or_not(store.write, "unlocked", change)
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore") as c:
            await warm_up(c, world, card, meanwhile)
            monkeypatch.setattr(store, "write", write)
            message = authorization(card, 500, f"{meanwhile}-changed")
            answer = await c.post(PATH, json=message, headers=world.network.headers)
    finally:
        await close(app)
    assert writes == [False, True]
    if meanwhile == "card locked":
        assert not answer.json()["approved"], answer.text
    else:
        assert answer.json()["approved"], answer.text
        assert answer.json()["available_balance"] == 10_000 - 3 * 100 - 300 - 500
    async with create_sessionmaker(engine)() as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(CardTransactionEvent)
            .where(CardTransactionEvent.network_key.like(f"%{meanwhile}-changed%"))
        )
        assert stored == 1
        assert await verify(session) == []


async def test_a_follow_up_on_a_changed_authorization_is_decided_again(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reversal read without the authorization's lock, cleared by another message before the
    reversal's write: the write records nothing, and read again the reversal finds the
    authorization settled (409, from the standard route) — the hold is released once, by the
    clearing."""
    app, world, card = await own_pool(committed_app, settings, "Changed authorization")

    async def clear(arguments: dict[str, Any]) -> None:
        clearing = follow_up_body(arguments["transaction"].id, "meanwhile-clearing")
        async with AsyncClient(
            transport=ASGITransport(app=committed_app), base_url="http://cardcore"
        ) as c:
            other = await c.post(
                "/v1/network/clearings", json=clearing, headers=world.network.headers
            )
            assert other.json()["approved"], other.text

    write, writes = _stale_or_not(store.write_follow_up, "version", clear)
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore") as c:
            warmed = await warm_up(c, world, card, "changed")
            monkeypatch.setattr(store, "write_follow_up", write)
            reversal = follow_up_body(warmed["authorization_id"], "changed-reversal")
            answer = await c.post(
                "/v1/network/reversals", json=reversal, headers=world.network.headers
            )
    finally:
        await close(app)
    assert writes[0] is False
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "TRANSFER_NOT_PENDING"
    async with create_sessionmaker(engine)() as session:
        assert await verify(session) == []
