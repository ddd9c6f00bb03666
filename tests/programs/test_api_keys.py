from httpx import AsyncClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.models import ApiKey, AuditLog, Event
from tests.factories import Partner


async def test_create_use_and_revoke(client: AsyncClient, partner: Partner) -> None:
    created = await client.post(
        "/v1/api-keys", json={"name": "ledger sync"}, headers=partner.headers
    )
    assert created.status_code == 201, created.text
    key = created.json()["data"]
    assert key["id"].startswith("key_")
    assert key["secret"].startswith("ck_live_")
    assert key["prefix"] == key["secret"][:12]
    assert key["status"] == "ACTIVE"

    new_headers = {"X-API-Key": key["secret"]}
    program = await client.get("/v1/program", headers=new_headers)
    assert program.status_code == 200
    assert program.json()["data"]["id"] == partner.program_id

    shown = (await client.get(f"/v1/api-keys/{key['id']}", headers=partner.headers)).json()["data"]
    assert "secret" not in shown
    assert shown["last_used_at"] is not None

    revoked = await client.delete(f"/v1/api-keys/{key['id']}", headers=partner.headers)
    assert revoked.status_code == 200
    assert revoked.json()["data"]["status"] == "REVOKED"
    assert (await client.get("/v1/program", headers=new_headers)).status_code == 401
    # The other key still works.
    assert (await client.get("/v1/program", headers=partner.headers)).status_code == 200


async def test_only_a_hash_of_the_key_is_stored(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    created = await client.post("/v1/api-keys", json={"name": "x"}, headers=partner.headers)
    secret = created.json()["data"]["secret"]
    dump = await session.scalar(text("SELECT string_agg(t::text, '|') FROM api_keys t"))
    events = await session.scalar(text("SELECT string_agg(t::text, '|') FROM events t"))
    assert secret not in dump
    assert secret[12:] not in dump
    assert secret not in events


async def test_create_writes_an_event_and_an_audit_row(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    response = await client.post(
        "/v1/api-keys", json={"name": "audited"}, headers={**partner.headers, "X-Request-Id": "r-1"}
    )
    key_id = response.json()["data"]["id"]
    event = await session.scalar(select(Event).where(Event.object_id == key_id))
    assert event is not None
    assert event.type == "api_key.created"
    assert event.request_id == "r-1"
    audit = await session.scalar(select(AuditLog).where(AuditLog.request_id == "r-1"))
    assert audit is not None
    assert (audit.action, audit.outcome, audit.object_id) == ("create_api_key", "success", key_id)
    assert (audit.actor_type, audit.actor_id, audit.program_id) == (
        "partner",
        partner.api_key_id,
        partner.program_id,
    )


async def test_failed_calls_are_audited_too(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    await client.post("/v1/api-keys", json={}, headers={**partner.headers, "X-Request-Id": "bad-1"})
    await client.post(
        "/v1/api-keys",
        content=b"{",
        headers={**partner.headers, "X-Request-Id": "bad-2", "Content-Type": "application/json"},
    )
    await client.delete("/v1/api-keys/key_x", headers={"X-Request-Id": "bad-3"})
    rows = {
        row.request_id: row
        for row in await session.scalars(
            select(AuditLog).where(AuditLog.request_id.in_(["bad-1", "bad-2", "bad-3"]))
        )
    }
    assert rows["bad-1"].outcome == "failure"
    assert rows["bad-1"].error_code == "VALIDATION_ERROR"
    assert rows["bad-1"].program_id == partner.program_id
    assert rows["bad-2"].status_code == 422
    assert (rows["bad-3"].error_code, rows["bad-3"].actor_type) == ("UNAUTHENTICATED", "anonymous")
    # Nothing of the failed attempts was kept but the audit rows.
    keys = await session.scalars(select(ApiKey).where(ApiKey.program_id == partner.program_id))
    assert len(keys.all()) == 1


async def test_another_programs_objects_are_404(
    client: AsyncClient, partner: Partner, other_partner: Partner
) -> None:
    mine = await client.post("/v1/api-keys", json={"name": "a"}, headers=partner.headers)
    key_id = mine.json()["data"]["id"]
    event_id = (await client.get("/v1/events", headers=partner.headers)).json()["data"][0]["id"]

    for path in (f"/v1/api-keys/{key_id}", f"/v1/events/{event_id}"):
        response = await client.get(path, headers=other_partner.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "NOT_FOUND"
    response = await client.delete(f"/v1/api-keys/{key_id}", headers=other_partner.headers)
    assert response.status_code == 404

    theirs = (await client.get("/v1/api-keys", headers=other_partner.headers)).json()["data"]
    assert [k["id"] for k in theirs] == [other_partner.api_key_id]
    their_events = (await client.get("/v1/events", headers=other_partner.headers)).json()["data"]
    assert all(e["object_id"] != key_id for e in their_events)
    # And the key is untouched.
    still = await client.get(f"/v1/api-keys/{key_id}", headers=partner.headers)
    assert still.json()["data"]["status"] == "ACTIVE"
