import asyncio

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from cardcore.db import create_sessionmaker
from cardcore.kit.access import Partner as PartnerPrincipal
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.models import ApiKey, Event, IdempotencyRecord
from tests.factories import Partner, make_partner


async def _count_keys(session: AsyncSession, program_id: str) -> int:
    return await session.scalar(
        select(func.count()).select_from(ApiKey).where(ApiKey.program_id == program_id)
    )  # type: ignore[return-value]


async def test_replay_returns_the_stored_response_and_does_nothing_twice(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    headers = {**partner.headers, "Idempotency-Key": "create-key-1"}
    first = await client.post("/v1/api-keys", json={"name": "once"}, headers=headers)
    second = await client.post("/v1/api-keys", json={"name": "once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await _count_keys(session, partner.program_id) == 2  # bootstrap key + one
    created = await session.scalars(select(Event).where(Event.type == "api_key.created"))
    assert len([e for e in created if e.program_id == partner.program_id]) == 2


async def test_same_key_other_body_is_rejected(client: AsyncClient, partner: Partner) -> None:
    headers = {**partner.headers, "Idempotency-Key": "k-2"}
    await client.post("/v1/api-keys", json={"name": "a"}, headers=headers)
    response = await client.post("/v1/api-keys", json={"name": "b"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_keys_belong_to_one_program(
    client: AsyncClient, partner: Partner, other_partner: Partner, session: AsyncSession
) -> None:
    body = {"name": "same"}
    a = await client.post(
        "/v1/api-keys", json=body, headers={**partner.headers, "Idempotency-Key": "shared"}
    )
    b = await client.post(
        "/v1/api-keys", json=body, headers={**other_partner.headers, "Idempotency-Key": "shared"}
    )
    assert a.status_code == b.status_code == 201
    assert "Idempotent-Replayed" not in b.headers
    assert a.json()["data"]["id"] != b.json()["data"]["id"]


async def test_a_failed_request_stores_nothing(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    headers = {**partner.headers, "Idempotency-Key": "k-3"}
    failed = await client.post("/v1/api-keys", json={"name": ""}, headers=headers)
    assert failed.status_code == 422
    retried = await client.post("/v1/api-keys", json={"name": "fixed"}, headers=headers)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers


async def test_an_expired_key_can_be_used_again(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    headers = {**partner.headers, "Idempotency-Key": "k-4"}
    first = await client.post("/v1/api-keys", json={"name": "a"}, headers=headers)
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.key == "k-4")
        .values(expires_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 1))
    )
    await session.commit()
    again = await client.post("/v1/api-keys", json={"name": "a"}, headers=headers)
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["data"]["id"] != first.json()["data"]["id"]


async def test_malformed_key_is_a_validation_error(client: AsyncClient, partner: Partner) -> None:
    for bad in ("", "x" * 256, "has space"):
        response = await client.post(
            "/v1/api-keys", json={"name": "a"}, headers={**partner.headers, "Idempotency-Key": bad}
        )
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_a_retry_while_the_first_is_running_gets_409(
    committed_app: FastAPI, engine: AsyncEngine
) -> None:
    """Real concurrency: two requests on two connections, the first held mid-flight."""
    entered, release = asyncio.Event(), asyncio.Event()
    slow = router()

    @slow.post("/v1/test/slow", status_code=201)
    async def slow_create(principal: PartnerPrincipal, session: DbSession) -> dict[str, str]:
        entered.set()
        await release.wait()
        return {"data": "done"}

    committed_app.include_router(slow)
    async with create_sessionmaker(engine)() as setup:
        partner = await make_partner(setup, "Concurrent")

    headers = {**partner.headers, "Idempotency-Key": "in-flight"}
    transport = ASGITransport(app=committed_app)
    async with AsyncClient(transport=transport, base_url="http://cardcore") as client:
        first = asyncio.create_task(client.post("/v1/test/slow", json={}, headers=headers))
        await asyncio.wait_for(entered.wait(), 10)
        concurrent = await client.post("/v1/test/slow", json={}, headers=headers)
        assert concurrent.status_code == 409
        assert concurrent.json()["code"] == "IDEMPOTENCY_KEY_IN_PROGRESS"
        release.set()
        done = await asyncio.wait_for(first, 10)
        assert done.status_code == 201
        after = await client.post("/v1/test/slow", json={}, headers=headers)
        assert after.status_code == 201
        assert after.headers["Idempotent-Replayed"] == "true"
        assert after.content == done.content
