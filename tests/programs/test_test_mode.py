"""Test mode is per program: a program is live or test, its credentials say which, only a test
program's credentials drive /v1/simulate/*, and one server serves both at once."""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.config import Settings
from cardcore.kit.crypto import sha256_digest
from cardcore.ledger.verify import verify
from cardcore.models import ApiKey, CardTransaction, Program, ProgramMode
from tests.auth.helpers import create_credential, partner_token
from tests.authorizations.network import available, body, network_ids
from tests.factories import Partner, World, bearer, make_admin, make_partner, make_world


@pytest.fixture
async def test_partner(session: AsyncSession) -> Partner:
    return await make_partner(session, "Sandbox Program", ProgramMode.TEST)


def merchant() -> dict[str, Any]:
    return {"name": "Shop", "mcc": "5411", "country": "PL"}


def simulations(world: World, authorization_id: str) -> dict[str, dict[str, Any]]:
    """A valid body for every simulation route, on `world`'s card."""
    card = world.card.id
    return {
        "/v1/simulate/authorizations": body(world),
        "/v1/simulate/reversals": {"authorization_id": authorization_id, "network": network_ids()},
        "/v1/simulate/clearings": {"authorization_id": authorization_id, "network": network_ids()},
        "/v1/simulate/expire": {"authorization_id": authorization_id},
        "/v1/simulate/refunds": {
            "card_id": card,
            "amount": 500,
            "currency": "EUR",
            "merchant": merchant(),
            "network": network_ids(),
        },
        "/v1/simulate/force-post-clearings": {
            "card_id": card,
            "amount": 700,
            "currency": "EUR",
            "merchant": merchant(),
            "channel": "POS",
            "entry_mode": "CHIP",
            "network": network_ids(),
        },
    }


async def transaction_count(session: AsyncSession, program_id: str) -> int:
    return await session.scalar(  # type: ignore[return-value]
        select(func.count()).where(CardTransaction.program_id == program_id)
    )


async def test_a_live_programs_credentials_cannot_simulate_and_nothing_moves(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    world = await make_world(app, partner)
    # A real hold, made by the processor, that the simulation must not be able to touch.
    hold = await client.post(
        "/v1/network/authorizations", json=body(world), headers=world.network.headers
    )
    assert hold.json()["approved"] is True, hold.text
    hold_id = hold.json()["authorization_id"]
    before = (
        await available(client, partner, world),
        await transaction_count(session, partner.program_id),
    )
    token = (await partner_token(client, partner))["access_token"]

    for headers in (partner.headers, bearer(token)):
        for path, message in simulations(world, hold_id).items():
            refused = await client.post(path, json=message, headers=headers)
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json()["code"] == "TEST_MODE_ONLY", path
        # Refused before the body is read: a live credential learns nothing about its shape.
        empty = await client.post("/v1/simulate/clearings", json={}, headers=headers)
        assert (empty.status_code, empty.json()["code"]) == (403, "TEST_MODE_ONLY")

    after = (
        await available(client, partner, world),
        await transaction_count(session, partner.program_id),
    )
    assert after == before
    held = (await client.get(f"/v1/transactions/{hold_id}", headers=partner.headers)).json()
    assert held["data"]["status"] == "PENDING"
    assert await verify(session) == []


async def test_a_test_programs_key_drives_the_simulation(
    client: AsyncClient, app: FastAPI, session: AsyncSession, test_partner: Partner
) -> None:
    world = await make_world(app, test_partner)
    assert test_partner.api_key.startswith("ck_test_")
    approved = (
        await client.post(
            "/v1/simulate/authorizations", json=body(world), headers=test_partner.headers
        )
    ).json()
    assert (approved["approved"], approved["held_amount"]) == (True, 1_000)
    assert await available(client, test_partner, world) == 9_000

    cleared = await client.post(
        "/v1/simulate/clearings",
        json={"authorization_id": approved["authorization_id"], "network": network_ids()},
        headers=test_partner.headers,
    )
    assert cleared.status_code == 200, cleared.text

    second = (
        await client.post(
            "/v1/simulate/authorizations",
            json=body(world, amount=300),
            headers=test_partner.headers,
        )
    ).json()
    expired = await client.post(
        "/v1/simulate/expire",
        json={"authorization_id": second["authorization_id"]},
        headers=test_partner.headers,
    )
    assert expired.json()["held_amount"] == 0
    txn = (
        await client.get(
            f"/v1/transactions/{second['authorization_id']}", headers=test_partner.headers
        )
    ).json()["data"]
    assert txn["status"] == "EXPIRED"
    assert await available(client, test_partner, world) == 9_000
    assert await verify(session) == []


async def test_one_server_serves_a_live_and_a_test_program_and_money_never_crosses(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    partner: Partner,
    test_partner: Partner,
) -> None:
    live = await make_world(app, partner)
    test = await make_world(app, test_partner)
    live_before = await available(client, partner, live)

    # The same app at the same time: the test program simulates, the live program is refused,
    # and the live program's processor still authorizes for real.
    simulated = await client.post(
        "/v1/simulate/authorizations", json=body(test), headers=test_partner.headers
    )
    assert simulated.json()["approved"] is True, simulated.text
    refused = await client.post(
        "/v1/simulate/authorizations", json=body(live), headers=partner.headers
    )
    assert refused.json()["code"] == "TEST_MODE_ONLY"
    real = await client.post(
        "/v1/network/authorizations", json=body(live, amount=200), headers=live.network.headers
    )
    assert real.json()["approved"] is True, real.text
    live_before -= 200

    # A test credential cannot reach the live program's cards, holds or balances.
    for path, message in simulations(live, real.json()["authorization_id"]).items():
        crossed = await client.post(path, json=message, headers=test_partner.headers)
        assert crossed.status_code == 404, (path, crossed.text)
    moved = await client.post(
        "/v1/transfers",
        json={
            "from_balance_id": test.card.balance_id,
            "to_balance_id": live.card.balance_id,
            "amount": 100,
            "currency": "EUR",
        },
        headers=test_partner.headers,
    )
    assert moved.status_code == 404, moved.text
    reloaded = await client.post(
        f"/v1/balances/{live.card.balance_id}/reload",
        json={"amount": 100, "currency": "EUR"},
        headers=test_partner.headers,
    )
    assert reloaded.status_code == 404, reloaded.text
    # Nor can the test program's processor key authorize on a live card.
    network = await client.post(
        "/v1/network/authorizations", json=body(live), headers=test.network.headers
    )
    assert network.status_code == 404, network.text

    assert await available(client, partner, live) == live_before
    assert await verify(session) == []


async def test_every_credential_carries_its_programs_mode(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    partner: Partner,
    test_partner: Partner,
) -> None:
    for owner, mode in ((partner, "live"), (test_partner, "test")):
        shown = (await client.get("/v1/program", headers=owner.headers)).json()["data"]
        assert shown["mode"] == mode
        assert owner.api_key.startswith(f"ck_{mode}_")
        key = (await client.post("/v1/api-keys", json={"name": "k"}, headers=owner.headers)).json()
        assert key["data"]["secret"].startswith(f"ck_{mode}_")
        assert key["data"]["prefix"].startswith(f"ck_{mode}_")
        token = (await make_admin(app, owner)).token
        network = await client.post(
            "/v1/admin/network-keys", json={"name": "processor"}, headers=bearer(token)
        )
        assert network.json()["data"]["secret"].startswith(f"ck_{mode}_")
        oauth = await create_credential(client, owner, "client_credentials")
        assert oauth["client_secret"].startswith(f"cs_{mode}_")
        jws = await create_credential(client, owner, "jws")
        assert jws["secret"].startswith(f"jws_{mode}_")


async def test_a_programs_mode_never_changes(session: AsyncSession, test_partner: Partner) -> None:
    with pytest.raises(IntegrityError, match="mode never changes"):
        async with session.begin_nested():
            await session.execute(
                update(Program).where(Program.id == test_partner.program_id).values(mode="live")
            )
    # Other settings of the program still change.
    await session.execute(
        update(Program)
        .where(Program.id == test_partner.program_id)
        .values(timezone="Europe/Warsaw")
    )


async def test_a_key_whose_prefix_names_another_mode_is_refused(
    client: AsyncClient, session: AsyncSession, partner: Partner
) -> None:
    # As a server switched between CARDCORE_SANDBOX values used to make them: a ck_test_ key of
    # a live program. It must not move real money.
    secret = "ck_test_" + "x" * 43
    session.add(
        ApiKey(
            program_id=partner.program_id,
            name="old sandbox key",
            kind="partner",
            secret_hash=sha256_digest(secret),
            display_prefix=secret[:12],
        )
    )
    await session.commit()
    refused = await client.get("/v1/program", headers={"X-API-Key": secret})
    assert refused.status_code == 401


def test_the_removed_sandbox_setting_stops_cardcore(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CARDCORE_MASTER_KEYS", "k:c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw==")
    for value in ("true", "false"):
        monkeypatch.setenv("CARDCORE_SANDBOX", value)
        with pytest.raises(ValidationError) as raised:
            Settings()
        assert "cardcore bootstrap --test" in str(raised.value)
        assert "c2VjcmV0" not in str(raised.value), "a setting's value is never echoed"
    monkeypatch.delenv("CARDCORE_SANDBOX")
    Settings()
    (tmp_path / ".env").write_text("CARDCORE_SANDBOX=true\n")
    with pytest.raises(ValidationError, match="CARDCORE_SANDBOX is no longer a setting"):
        Settings()
