"""Ops set the program's rules over the API, and the authorization engine follows them."""

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.authorizations.network import authorize, follow_up
from tests.factories import Partner, World, make_admin

BAR = {"name": "Bar", "mcc": "5813", "country": "PL"}


async def test_ops_read_and_change_the_rules(
    client: AsyncClient,
    session: AsyncSession,
    partner: Partner,
    world: World,
) -> None:
    admin = world.admin.headers
    current = (await client.get("/v1/admin/program-settings", headers=admin)).json()["data"]
    assert (current["timezone"], current["fx_markup_bps"], current["hold_expiry_days"]) == (
        "UTC",
        0,
        7,
    )
    changed = await client.patch(
        "/v1/admin/program-settings",
        json={
            "timezone": "Europe/Warsaw",
            "home_country": "pl",
            "fx_markup_bps": 150,
            "hold_expiry_days": 10,
            "clearing_tolerances": {"5813": 0},
            "control_maxima": [{"kind": "amount", "period": "transaction", "value": 5_000}],
        },
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert (data["home_country"], data["clearing_tolerances"]) == ("PL", {"5813": 0})

    # The engine follows at once: the program maximum declines, a bar clears no tip any more.
    big = await authorize(client, world, amount=5_001)
    assert (big["response_code"], big["decline_reason"]) == ("61", "AMOUNT_PER_TRANSACTION_ALL")
    drink = await authorize(client, world, amount=1_000, merchant=BAR)
    tipped = await follow_up(
        client, world, "clearings", authorization_id=drink["authorization_id"], amount=1_100
    )
    assert tipped.json()["code"] == "CLEARING_ABOVE_TOLERANCE"

    for bad in (
        {"timezone": "Mars/Olympus"},
        {"home_country": "XX"},
        {"fx_markup_bps": -1},
        {"hold_expiry_days": 0},
        {"clearing_tolerances": {"58": 100}},
        {"clearing_tolerances": {"5813": 20_000}},
        {"timezone": None},
        {"unknown": 1},
    ):
        refused = await client.patch("/v1/admin/program-settings", json=bad, headers=admin)
        assert (refused.status_code, refused.json()["code"]) == (422, "VALIDATION_ERROR"), bad


async def test_managers_read_only_admins_write(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    manager = (await make_admin(app, partner, "manager")).headers
    assert (await client.get("/v1/admin/program-settings", headers=manager)).status_code == 200
    assert (
        await client.patch("/v1/admin/program-settings", json={"fx_markup_bps": 1}, headers=manager)
    ).status_code == 403
    assert (
        await client.get("/v1/admin/program-settings", headers=partner.headers)
    ).status_code == 403
