"""The authorization's lean route (authorizations/lean.py): the same answers as the standard
route, a network key that stops working stops at once, four round trips per authorization."""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from cardcore.app import create_app
from cardcore.authorizations import lean
from cardcore.config import Settings
from cardcore.db import create_engine, create_sessionmaker
from cardcore.kit.crypto import sha256_digest
from cardcore.ledger.verify import verify
from cardcore.models import ApiKey, AuditLog, CardTransactionEvent, Event, Program
from tests.authorizations import helpers
from tests.authorizations.conftest import make_world
from tests.authorizations.network import body
from tests.conftest import make_partner

PATH = "/v1/network/authorizations"


def _known(world: dict[str, Any]) -> bool:
    return sha256_digest(world["network"]["X-API-Key"]) in lean._KNOWN_KEYS


async def _audited(session: AsyncSession) -> int:
    return await session.scalar(  # type: ignore[return-value]
        select(func.count()).select_from(AuditLog).where(AuditLog.path == PATH)
    )


async def test_a_known_key_goes_lean_with_the_same_answers(
    client: AsyncClient, world: dict[str, Any], session: AsyncSession
) -> None:
    lean._KNOWN_KEYS.clear()
    first = await client.post(PATH, json=body(world), headers=world["network"])
    assert first.status_code == 200, first.text
    # The first message of a key in a process takes the standard route, which learns the key.
    assert _known(world)
    assert await _audited(session) == 1
    message = body(world)
    lean_answer = await client.post(PATH, json=message, headers=world["network"])
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
    again = await client.post(PATH, json=message, headers=world["network"])
    assert again.content == lean_answer.content
    standard = await client.post(
        PATH, json=message, headers={**world["network"], "Idempotency-Key": "retransmitted"}
    )
    assert standard.content == lean_answer.content
    assert lean_answer.json()["available_balance"] == 10_000 - 2 * 1_000
    assert await verify(session) == []


async def test_errors_are_the_standard_routes(
    client: AsyncClient, world: dict[str, Any], session: AsyncSession
) -> None:
    await client.post(PATH, json=body(world), headers=world["network"])
    assert _known(world)
    invalid = await client.post(PATH, json=body(world, amount=-5), headers=world["network"])
    assert invalid.status_code == 422
    assert invalid.json()["code"] == "VALIDATION_ERROR"
    unknown = await client.post(
        PATH, json=body(world, card_id="card_01jd3xk0000000000000000000"), headers=world["network"]
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
    client: AsyncClient, world: dict[str, Any], session: AsyncSession, change: str
) -> None:
    assert (await client.post(PATH, json=body(world), headers=world["network"])).status_code == 200
    assert _known(world)
    digest = sha256_digest(world["network"]["X-API-Key"])
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
    refused = await client.post(PATH, json=body(world), headers=world["network"])
    assert refused.status_code == (401 if change == "revoke" else 403), refused.text
    assert not _known(world)


async def test_another_programs_card_is_not_found(
    client: AsyncClient, world: dict[str, Any], session: AsyncSession
) -> None:
    other = await make_world(client, session, await make_partner(session, "Other"))
    assert (await client.post(PATH, json=body(world), headers=world["network"])).status_code == 200
    stolen = await client.post(
        PATH, json=body(world, card_id=other["card"]["id"]), headers=world["network"]
    )
    assert stolen.status_code == 404


async def test_an_authorization_is_four_round_trips(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    """BEGIN, the read, the write, COMMIT, on an app served as in production: its own engine,
    here of one pooled connection, whose every statement is logged while one runs."""
    async with (
        create_sessionmaker(engine)() as session,
        AsyncClient(transport=ASGITransport(app=committed_app), base_url="http://cardcore") as c,
    ):
        world = await helpers.make_world(c, session, "Counted", 10_000)
    one = create_engine(
        settings.database_url or "",
        settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0}),
    )
    app = create_app(settings, sessionmaker=create_sessionmaker(one))
    sent: list[str] = []
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://cardcore") as c:
            message = helpers.authorization(world.cards[0].card_id, 100, "counted-1")
            first = await c.post(PATH, json=message, headers=world.network)
            assert first.json()["approved"], first.text
            async with one.connect() as probe:
                connection = (await probe.get_raw_connection()).driver_connection

            def log(record: Any) -> None:
                sent.append(record.query)

            connection.add_query_logger(log)
            message = helpers.authorization(world.cards[0].card_id, 100, "counted-2")
            answer = await c.post(PATH, json=message, headers=world.network)
            connection.remove_query_logger(log)
    finally:
        await one.dispose()
    assert answer.json()["approved"], answer.text
    assert [" ".join(q.split()[:2]) for q in sent] == [
        "BEGIN;",
        "SELECT key_ok,",
        "SELECT refused_account,",
        "COMMIT;",
    ]
