"""A unique key already taken is 409 ALREADY_EXISTS, never a 500, and the answer does not quote
the values that collided (PostgreSQL's "Key (email)=(…) already exists")."""

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PRODUCT, Partner, bearer, make_admin


async def test_a_duplicate_admin_email_is_409(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    token = (await make_admin(app, partner, "admin")).token
    first = {"email": "ops.lead@example.com", "password": "x" * 16, "role": "employee"}
    created = await client.post("/v1/admin/users", json=first, headers=bearer(token))
    assert created.status_code == 201, created.text

    # The same address in other letters is the same address.
    for email in ("ops.lead@example.com", "Ops.Lead@Example.com"):
        again = await client.post(
            "/v1/admin/users", json={**first, "email": email}, headers=bearer(token)
        )
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "ALREADY_EXISTS"
        assert "ops.lead" not in again.text.lower()

    # The refusal broke nothing: the admin exists once, and the caller can carry on.
    listed = await client.get("/v1/admin/users", headers=bearer(token))
    emails = [a["email"] for a in listed.json()["data"]]
    assert emails.count("ops.lead@example.com") == 1


async def test_any_other_unique_key_is_409_too(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    """The backstop for a key no service anticipated: here a rule an operator added to the
    database (a product name unique per program)."""
    await session.execute(
        text("CREATE UNIQUE INDEX uq_test_product_name ON card_products (program_id, name)")
    )
    token = (await make_admin(app, partner, "admin")).token
    product = {**PRODUCT, "name": "Zorblax Platinum"}
    first = await client.post("/v1/admin/products", json=product, headers=bearer(token))
    assert first.status_code == 201, first.text
    again = await client.post("/v1/admin/products", json=product, headers=bearer(token))
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "ALREADY_EXISTS"
    assert "Zorblax" not in again.text
    assert "uq_test_product_name" not in again.text

    # The audit trail calls it what the caller got: a refusal, not our error.
    audit = await client.get("/v1/admin/audit-log", headers=bearer(token))
    assert audit.status_code == 200
    rows = [e for e in audit.json()["data"] if e["path"] == "/v1/admin/products"]
    assert [(e["outcome"], e["status_code"], e["error_code"]) for e in rows] == [
        ("failure", 409, "ALREADY_EXISTS"),
        ("success", 201, None),
    ]
