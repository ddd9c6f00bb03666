"""A card number reported lost, stolen or used in fraud is never live again: not through an older
report, a renewal, a declined report, an unlock, a physical conversion, nor a card that carries the
same number (issue 16, item 1)."""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.models import Card
from tests.cards.helpers import issue
from tests.factories import (
    DELIVERY,
    Partner,
    World,
    fund_balance,
    make_world,
)

# A state from which a card can authorize, or get back to one that can.
CAN_COME_BACK = ("ACTIVE", "INACTIVE", "FROZEN")


@pytest.fixture
async def setup(app: FastAPI, partner: Partner) -> World:
    """A card program with a network key and 100.00 EUR on its holder's balance, but no card:
    each test issues its own."""
    setup = await make_world(app, partner, funding=())
    assert setup.holder.balance_id is not None
    await fund_balance(app, setup.holder.balance_id, 10_000)
    return setup


_ids = iter(range(1, 1_000_000))


async def _authorize(client: AsyncClient, setup: World, **card: str) -> Response:
    """A 10.00 EUR chip purchase, by `pan=` or `card_id=`."""
    return await client.post(
        "/v1/network/authorizations",
        json={
            **card,
            "amount": 1_000,
            "currency": "EUR",
            "merchant": {"name": "Shop", "mcc": "5411", "country": "PL"},
            "channel": "POS",
            "entry_mode": "CHIP",
            "network": {"network_transaction_id": f"cmp-{next(_ids)}"},
        },
        headers=setup.network.headers,
    )


def _approved(answer: Response) -> bool:
    assert answer.status_code < 500, answer.text
    return answer.status_code == 200 and answer.json()["approved"] is True


async def _card(client: AsyncClient, partner: Partner, setup: World) -> dict[str, Any]:
    issued = await issue(client, partner, setup)
    assert issued.status_code == 201, issued.text
    return issued.json()["data"]  # type: ignore[no-any-return]


async def _pan_of(app: FastAPI, session: AsyncSession, card_id: str) -> str:
    card = await session.get(Card, card_id, populate_existing=True)
    assert card is not None
    return await app.state.card_services.vault.decrypt(session, card)  # type: ignore[no-any-return]


async def _live_carriers(app: FastAPI, session: AsyncSession, pan: str) -> list[tuple[str, str]]:
    """(id, status) of every card carrying `pan` that can authorize or come back."""
    found = []
    for card in (
        await session.scalars(select(Card).execution_options(populate_existing=True))
    ).all():
        if (
            card.status in CAN_COME_BACK
            and await app.state.card_services.vault.decrypt(session, card) == pan
        ):
            found.append((card.id, card.status))
    return found


async def _report(client: AsyncClient, partner: Partner, card_id: str, reason: str) -> Response:
    return await client.post(
        f"/v1/cards/{card_id}/reports", json={"reason": reason}, headers=partner.headers
    )


async def _act(client: AsyncClient, partner: Partner, report_id: str, action: str) -> Response:
    return await client.post(
        f"/v1/card-reports/{report_id}/{action}",
        json={} if action == "decline" else None,
        headers=partner.headers,
    )


async def test_a_stolen_number_does_not_come_back_through_an_older_damaged_report(
    client: AsyncClient,
    partner: Partner,
    setup: World,
    session: AsyncSession,
    app: FastAPI,
) -> None:
    card = await _card(client, partner, setup)
    pan = await _pan_of(app, session, card["id"])
    assert _approved(await _authorize(client, setup, pan=pan)), "the number works before"

    damaged = await _report(client, partner, card["id"], "DAMAGED")
    assert damaged.status_code == 201, damaged.text
    stolen = await _report(client, partner, card["id"], "STOLEN")
    assert stolen.status_code == 201, stolen.text
    replaced = await _act(client, partner, stolen.json()["data"]["id"], "replace")
    assert replaced.status_code == 200, replaced.text
    new = replaced.json()["data"]
    assert await _pan_of(app, session, new["id"]) != pan

    older = await _act(client, partner, damaged.json()["data"]["id"], "replace")
    assert older.status_code == 409, older.text
    assert older.json()["code"] == "REPORT_NOT_OPEN"
    shown = await client.get("/v1/card-reports", headers=partner.headers)
    statuses = {r["id"]: (r["status"], r["superseded_by"]) for r in shown.json()["data"]}
    assert statuses[damaged.json()["data"]["id"]] == ("SUPERSEDED", stolen.json()["data"]["id"])

    assert await _live_carriers(app, session, pan) == []
    assert not _approved(await _authorize(client, setup, pan=pan))
    assert not _approved(await _authorize(client, setup, card_id=card["id"]))
    assert _approved(await _authorize(client, setup, card_id=new["id"])), "the new card works"


async def test_two_damaged_reports_on_one_card_are_one_report(
    client: AsyncClient, partner: Partner, setup: World
) -> None:
    card = await _card(client, partner, setup)
    first = await _report(client, partner, card["id"], "DAMAGED")
    assert first.status_code == 201, first.text
    second = await _report(client, partner, card["id"], "DAMAGED")
    assert (second.status_code, second.json()["code"]) == (409, "REPORT_ALREADY_OPEN")
    assert second.json()["errors"] == [], "nothing of the request is echoed"

    replaced = await _act(client, partner, first.json()["data"]["id"], "replace")
    assert replaced.status_code == 200, replaced.text
    # The replaced card takes no more reports: the new one does.
    after = await _report(client, partner, card["id"], "DAMAGED")
    assert (after.status_code, after.json()["code"]) == (409, "CARD_REPLACED")
    on_new = await _report(client, partner, replaced.json()["data"]["id"], "DAMAGED")
    assert on_new.status_code == 201, on_new.text


@pytest.mark.parametrize("reason", ["LOST", "STOLEN", "FRAUD"])
async def test_a_reported_number_is_never_unlocked_renewed_or_declined_back_to_life(
    client: AsyncClient,
    partner: Partner,
    setup: World,
    session: AsyncSession,
    app: FastAPI,
    reason: str,
) -> None:
    card = await _card(client, partner, setup)
    pan = await _pan_of(app, session, card["id"])
    report = await _report(client, partner, card["id"], reason)
    assert report.status_code == 201, report.text
    report_id = report.json()["data"]["id"]

    attempts = [
        await client.post(f"/v1/cards/{card['id']}/unlock", headers=partner.headers),
        await client.post(
            f"/v1/cards/{card['id']}/status", json={"status": "ACTIVE"}, headers=partner.headers
        ),
        await _act(client, partner, report_id, "decline"),
        await _act(client, partner, report_id, "renew"),
    ]
    for attempt in attempts:
        assert attempt.status_code == 409, attempt.text
        assert attempt.json()["code"] in ("CARD_NUMBER_COMPROMISED", "LOCK_IRREVERSIBLE")
    assert {a.json()["code"] for a in attempts[2:]} == {"CARD_NUMBER_COMPROMISED"}
    # A lighter lock on top of it does not open a way back either.
    if reason == "FRAUD":
        relocked = await client.post(
            f"/v1/cards/{card['id']}/lock", json={"reason_code": 3}, headers=partner.headers
        )
        assert relocked.status_code == 200, relocked.text
        unlocked = await client.post(f"/v1/cards/{card['id']}/unlock", headers=partner.headers)
        assert unlocked.json()["code"] == "CARD_NUMBER_COMPROMISED"
    assert await _live_carriers(app, session, pan) == []
    assert not _approved(await _authorize(client, setup, pan=pan))
    # What remains is what a card-security officer wants: a new number.
    replaced = await _act(client, partner, report_id, "replace")
    assert replaced.status_code == 200, replaced.text
    assert await _pan_of(app, session, replaced.json()["data"]["id"]) != pan


async def test_a_number_the_network_locked_as_stolen_is_replaced_with_a_new_one(
    client: AsyncClient,
    partner: Partner,
    setup: World,
    session: AsyncSession,
    app: FastAPI,
) -> None:
    card = await _card(client, partner, setup)
    pan = await _pan_of(app, session, card["id"])
    damaged = await _report(client, partner, card["id"], "DAMAGED")
    locked = await client.post(
        f"/v1/cards/{card['id']}/lock", json={"reason_code": 2}, headers=setup.network.headers
    )
    assert locked.status_code == 200, locked.text
    renewed = await _act(client, partner, damaged.json()["data"]["id"], "renew")
    assert renewed.json()["code"] == "CARD_NUMBER_COMPROMISED"
    replaced = await _act(client, partner, damaged.json()["data"]["id"], "replace")
    assert replaced.status_code == 200, replaced.text
    assert await _pan_of(app, session, replaced.json()["data"]["id"]) != pan
    assert await _live_carriers(app, session, pan) == []
    # A report on a card locked for good is refused: there is nothing left to decide.
    other = await _card(client, partner, setup)
    await client.post(
        f"/v1/cards/{other['id']}/lock", json={"reason_code": 1}, headers=setup.network.headers
    )
    refused = await _report(client, partner, other["id"], "DAMAGED")
    assert (refused.status_code, refused.json()["code"]) == (409, "CARD_NOT_REPORTABLE")


async def test_a_closed_card_takes_no_report(
    client: AsyncClient, partner: Partner, setup: World
) -> None:
    card = await _card(client, partner, setup)
    closed = await client.delete(f"/v1/cards/{card['id']}", headers=partner.headers)
    assert closed.status_code == 200, closed.text
    refused = await _report(client, partner, card["id"], "STOLEN")
    assert (refused.status_code, refused.json()["code"]) == (409, "CARD_NOT_REPORTABLE")


async def _physical_request(client: AsyncClient, partner: Partner, card_id: str) -> Response:
    return await client.post(
        f"/v1/cards/{card_id}/physical-requests",
        json={"embossing_name": "ZOFIA KOWALSKA", "delivery_address": DELIVERY},
        headers=partner.headers,
    )


async def test_a_converted_virtual_card_dies_with_its_stolen_plastic(
    client: AsyncClient,
    partner: Partner,
    setup: World,
    session: AsyncSession,
    app: FastAPI,
) -> None:
    virtual = await _card(client, partner, setup)
    pan = await _pan_of(app, session, virtual["id"])
    request = await _physical_request(client, partner, virtual["id"])
    approved = await client.post(
        f"/v1/physical-requests/{request.json()['data']['id']}/approve", headers=partner.headers
    )
    assert approved.status_code == 200, approved.text
    physical = approved.json()["data"]["physical_card_id"]
    assert _approved(await _authorize(client, setup, card_id=virtual["id"])), "still usable"

    stolen = await _report(client, partner, physical, "STOLEN")
    assert stolen.status_code == 201, stolen.text
    assert await _live_carriers(app, session, pan) == []
    assert not _approved(await _authorize(client, setup, card_id=virtual["id"]))
    # The virtual card was replaced by the plastic: reports go to the plastic.
    again = await _report(client, partner, virtual["id"], "LOST")
    assert (again.status_code, again.json()["code"]) == (409, "CARD_REPLACED")


async def test_a_lost_card_is_not_converted_and_a_card_is_converted_once(
    client: AsyncClient,
    partner: Partner,
    setup: World,
    session: AsyncSession,
    app: FastAPI,
) -> None:
    virtual = await _card(client, partner, setup)
    pan = await _pan_of(app, session, virtual["id"])
    pending = await _physical_request(client, partner, virtual["id"])
    assert (await _report(client, partner, virtual["id"], "LOST")).status_code == 201
    refused = await client.post(
        f"/v1/physical-requests/{pending.json()['data']['id']}/approve", headers=partner.headers
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "CARD_NUMBER_COMPROMISED")
    assert await _live_carriers(app, session, pan) == []

    other = await _card(client, partner, setup)
    first = await _physical_request(client, partner, other["id"])
    second = await _physical_request(client, partner, other["id"])
    assert second.status_code == 201, second.text
    done = await client.post(
        f"/v1/physical-requests/{first.json()['data']['id']}/approve", headers=partner.headers
    )
    assert done.status_code == 200, done.text
    twice = await client.post(
        f"/v1/physical-requests/{second.json()['data']['id']}/approve", headers=partner.headers
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "CARD_REPLACED")
    after = await _physical_request(client, partner, other["id"])
    assert (after.status_code, after.json()["code"]) == (409, "CARD_REPLACED")
