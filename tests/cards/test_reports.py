"""Reported cards, replacement and renewal, virtual to physical, 3DS, balance moves."""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards.service import pin_matches
from cardcore.models import Card, Program
from tests.cards.helpers import issue
from tests.factories import DELIVERY, CardProgram, Partner, make_card_program
from tests.kit.jose import encrypted_post, opened


@pytest.fixture
async def setup(app: FastAPI, partner: Partner) -> CardProgram:
    return await make_card_program(app, partner)


async def _pan(client: AsyncClient, partner: Partner, card_id: str) -> str:
    response = await encrypted_post(
        client, f"/v1/cards/{card_id}/reveal", {"fields": ["pan", "cvv"]}, partner.headers
    )
    data = opened(response)["data"]
    return data["pan"] + ":" + data["cvv"]  # type: ignore[no-any-return]


async def _report(
    client: AsyncClient, partner: Partner, card_id: str, reason: str
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/cards/{card_id}/reports", json={"reason": reason}, headers=partner.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("reason", "lock"), [("LOST", 1), ("STOLEN", 2), ("FRAUD", 7)])
async def test_reports_that_lock_and_replacement_with_a_new_number(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    session: AsyncSession,
    app: FastAPI,
    reason: str,
    lock: int,
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    await encrypted_post(
        client, f"/v1/cards/{card['id']}/pin", {"pin": "7391"}, partner.headers, "PUT"
    )
    await client.put(
        f"/v1/cards/{card['id']}/controls",
        json={"channels": {"ATM": False}},
        headers=partner.headers,
    )
    old_pan = await _pan(client, partner, card["id"])
    report = await _report(client, partner, card["id"], reason)
    shown = (await client.get(f"/v1/cards/{card['id']}", headers=partner.headers)).json()["data"]
    assert shown["status"] == "LOCKED"
    replaced = await client.post(
        f"/v1/card-reports/{report['id']}/replace", headers=partner.headers
    )
    assert replaced.status_code == 200, replaced.text
    new = replaced.json()["data"]
    assert (new["status"], new["replacement_for"], new["balance_id"]) == (
        "ACTIVE",
        card["id"],
        card["balance_id"],
    )
    assert new["pin_set"] is True
    assert (await _pan(client, partner, new["id"])).split(":")[0] != old_pan.split(":")[0]
    old_after = (
        await client.post(
            f"/v1/cards/{card['id']}/lock", json={"reason_code": 3}, headers=partner.headers
        )
    ).json()
    assert old_after["code"] == "LOCK_IRREVERSIBLE"
    old_row = await session.get(Card, card["id"])
    new_row = await session.get(Card, new["id"])
    assert old_row is not None
    assert new_row is not None
    await session.refresh(old_row)
    assert (old_row.status, old_row.lock_reason, old_row.replaced_by) == ("LOCKED", 8, new["id"])
    assert pin_matches(app.state.card_services, new_row, "7391"), "the PIN carried over"
    controls = (
        await client.get(f"/v1/cards/{new['id']}/controls", headers=partner.headers)
    ).json()["data"]
    assert controls["channels"] == {"ATM": False}
    again = await client.post(f"/v1/card-reports/{report['id']}/replace", headers=partner.headers)
    assert again.status_code == 409


@pytest.mark.parametrize("reason", ["DAMAGED", "NOT_RECEIVED"])
async def test_damaged_or_not_received_keep_the_number(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    reason: str,
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    old = await _pan(client, partner, card["id"])
    report = await _report(client, partner, card["id"], reason)
    assert (await client.get(f"/v1/cards/{card['id']}", headers=partner.headers)).json()["data"][
        "status"
    ] == "ACTIVE"
    new = (
        await client.post(f"/v1/card-reports/{report['id']}/replace", headers=partner.headers)
    ).json()["data"]
    new_pan = await _pan(client, partner, new["id"])
    assert new_pan.split(":")[0] == old.split(":")[0]
    assert new["last4"] == card["last4"]


async def test_renew_and_decline(
    client: AsyncClient, partner: Partner, setup: CardProgram, session: AsyncSession
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    await session.execute(
        update(Card).where(Card.id == card["id"]).values(expiry_year=2027, expiry_month=1)
    )
    await session.commit()
    before = await _pan(client, partner, card["id"])
    report = await _report(client, partner, card["id"], "DAMAGED")
    renewed = (
        await client.post(f"/v1/card-reports/{report['id']}/renew", headers=partner.headers)
    ).json()["data"]
    assert renewed["id"] == card["id"]
    assert renewed["expiry_year"] > 2027
    after = await _pan(client, partner, card["id"])
    assert after.split(":")[0] == before.split(":")[0]
    assert after.split(":")[1] != before.split(":")[1], "a new expiry means a new CVV2"

    # Declined: nothing happens to the card. (A lost, stolen or fraud report is never declined:
    # test_compromised.py.)
    damaged = await _report(client, partner, card["id"], "DAMAGED")
    declined = (
        await client.post(
            f"/v1/card-reports/{damaged['id']}/decline",
            json={"reason": "customer's mistake"},
            headers=partner.headers,
        )
    ).json()["data"]
    assert (declined["id"], declined["status"]) == (card["id"], "ACTIVE")
    listed = (await client.get("/v1/card-reports?status=DECLINED", headers=partner.headers)).json()[
        "data"
    ]
    assert [(r["id"], r["decline_reason"]) for r in listed] == [
        (damaged["id"], "customer's mistake")
    ]
    for action in ("renew", "decline", "replace"):
        again = await client.post(
            f"/v1/card-reports/{damaged['id']}/{action}",
            json={} if action == "decline" else None,
            headers=partner.headers,
        )
        assert (again.status_code, again.json()["code"]) == (409, "REPORT_NOT_OPEN")


async def test_virtual_to_physical(
    client: AsyncClient, partner: Partner, setup: CardProgram
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    pan = await _pan(client, partner, card["id"])
    bad = await client.post(
        f"/v1/cards/{card['id']}/physical-requests",
        json={"embossing_name": "NOT ME", "delivery_address": DELIVERY},
        headers=partner.headers,
    )
    assert bad.json()["code"] == "EMBOSSING_NAME_NOT_ALLOWED"
    request = (
        await client.post(
            f"/v1/cards/{card['id']}/physical-requests",
            json={"embossing_name": "ZOFIA KOWALSKA", "delivery_address": DELIVERY},
            headers=partner.headers,
        )
    ).json()["data"]
    assert request["status"] == "PENDING"
    approved = (
        await client.post(f"/v1/physical-requests/{request['id']}/approve", headers=partner.headers)
    ).json()["data"]
    physical = (
        await client.get(f"/v1/cards/{approved['physical_card_id']}", headers=partner.headers)
    ).json()["data"]
    assert (physical["type"], physical["status"], physical["fulfillment"]["status"]) == (
        "PHYSICAL",
        "INACTIVE",
        "ORDERED",
    )
    assert physical["balance_id"] == card["balance_id"]
    assert (await _pan(client, partner, physical["id"])).split(":")[0] == pan.split(":")[0]
    twice = await client.post(
        f"/v1/physical-requests/{request['id']}/reject", json={}, headers=partner.headers
    )
    assert twice.status_code == 409


async def test_3ds_and_balance_moves(
    client: AsyncClient, partner: Partner, setup: CardProgram, session: AsyncSession
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    enrolled = (
        await client.post(
            f"/v1/cards/{card['id']}/3ds",
            json={"phone": "+48 601 234 567"},
            headers=partner.headers,
        )
    ).json()["data"]
    assert enrolled["three_ds"]["phone"] == "+48601234567"
    assert (
        await client.post(f"/v1/cards/{card['id']}/3ds", json={}, headers=partner.headers)
    ).status_code == 422
    removed = (await client.delete(f"/v1/cards/{card['id']}/3ds", headers=partner.headers)).json()[
        "data"
    ]
    assert removed["three_ds"] is None

    second = await client.post(
        "/v1/balances",
        json={"user_id": setup.holder.user_id, "currency": "EUR"},
        headers=partner.headers,
    )
    target = second.json()["data"]["id"]
    refused = await client.post(
        f"/v1/cards/{card['id']}/balance", json={"balance_id": target}, headers=partner.headers
    )
    assert refused.json()["code"] == "BALANCE_CHANGE_NOT_ALLOWED"
    await session.execute(
        update(Program)
        .where(Program.id == partner.program_id)
        .values(allow_card_balance_change=True)
    )
    await session.commit()
    moved = (
        await client.post(
            f"/v1/cards/{card['id']}/balance", json={"balance_id": target}, headers=partner.headers
        )
    ).json()["data"]
    assert moved["balance_id"] == target
