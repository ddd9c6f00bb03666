"""Reports, actions on reports and locks racing on one card number, in real concurrent
transactions: each race ends in a state the rules allow (one open report at most, no compromised
number on a card that can authorize), and none ends in a 5xx or a deadlock."""

import asyncio

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from cardcore.db import create_sessionmaker
from cardcore.models import Card, CardReport
from tests.cards.helpers import issue
from tests.factories import (
    DELIVERY,
    Partner,
    World,
    new_world,
)

ROUNDS = 8
CAN_COME_BACK = ("ACTIVE", "INACTIVE", "FROZEN")


async def _carriers(app: FastAPI, session: AsyncSession, card_id: str) -> list[Card]:
    """Every card with the same number as `card_id`, as committed now."""
    vault = app.state.card_services.vault
    cards = (await session.scalars(select(Card).execution_options(populate_existing=True))).all()
    reference = next(c for c in cards if c.id == card_id)
    pan = await vault.decrypt(session, reference)
    return [c for c in cards if await vault.decrypt(session, c) == pan]


def _no_5xx(responses: list[Response]) -> None:
    for response in responses:
        assert response.status_code < 500, response.text


async def test_racing_reports_and_actions_keep_the_rules(
    committed_app: FastAPI, engine: AsyncEngine
) -> None:
    setup = await new_world(committed_app, "Races", funding=())
    partner = setup.partner
    maker = create_sessionmaker(engine)
    async with (
        maker() as session,
        AsyncClient(
            transport=ASGITransport(app=committed_app), base_url="http://cardcore", timeout=120
        ) as client,
    ):
        for _ in range(ROUNDS):
            await _older_report_against_newer_ones(client, committed_app, partner, setup, session)
            await _two_compromises_from_two_cards(client, committed_app, partner, setup, session)


async def _card(client: AsyncClient, partner: Partner, setup: World) -> str:
    issued = await issue(client, partner, setup)
    assert issued.status_code == 201, issued.text
    return issued.json()["data"]["id"]  # type: ignore[no-any-return]


async def _older_report_against_newer_ones(
    client: AsyncClient, app: FastAPI, partner: Partner, setup: World, session: AsyncSession
) -> None:
    """The issue's sequence, all at once: a damaged report acted on while stolen and fraud
    reports arrive."""
    card_id = await _card(client, partner, setup)
    damaged = await client.post(
        f"/v1/cards/{card_id}/reports", json={"reason": "DAMAGED"}, headers=partner.headers
    )
    report_id = damaged.json()["data"]["id"]
    h = partner.headers
    responses = await asyncio.gather(
        client.post(f"/v1/cards/{card_id}/reports", json={"reason": "STOLEN"}, headers=h),
        client.post(f"/v1/card-reports/{report_id}/replace", headers=h),
        client.post(f"/v1/cards/{card_id}/reports", json={"reason": "FRAUD"}, headers=h),
        client.post(f"/v1/card-reports/{report_id}/renew", headers=h),
        client.post(f"/v1/card-reports/{report_id}/decline", json={}, headers=h),
    )
    _no_5xx(list(responses))
    stolen, replaced, fraud, renewed, declined = responses
    assert [replaced.status_code, renewed.status_code, declined.status_code].count(200) <= 1
    open_reports = await session.scalar(
        select(func.count())
        .select_from(CardReport)
        .where(CardReport.card_id == card_id, CardReport.status == "OPEN")
    )
    assert (open_reports or 0) <= 1
    if stolen.status_code == 201 or fraud.status_code == 201:
        live = [
            (c.id, c.status)
            for c in await _carriers(app, session, card_id)
            if c.status in CAN_COME_BACK
        ]
        assert live == []


async def _two_compromises_from_two_cards(
    client: AsyncClient, app: FastAPI, partner: Partner, setup: World, session: AsyncSession
) -> None:
    """A virtual card and the plastic made from it share a number: the network locks one as
    stolen while the cardholder reports the other lost. Both lock both cards; neither waits on
    the other for ever."""
    virtual = await _card(client, partner, setup)
    request = await client.post(
        f"/v1/cards/{virtual}/physical-requests",
        json={"embossing_name": "ZOFIA KOWALSKA", "delivery_address": DELIVERY},
        headers=partner.headers,
    )
    approved = await client.post(
        f"/v1/physical-requests/{request.json()['data']['id']}/approve", headers=partner.headers
    )
    physical = approved.json()["data"]["physical_card_id"]
    responses = await asyncio.gather(
        client.post(
            f"/v1/cards/{virtual}/lock", json={"reason_code": 2}, headers=setup.network.headers
        ),
        client.post(
            f"/v1/cards/{physical}/reports", json={"reason": "LOST"}, headers=partner.headers
        ),
        client.post(f"/v1/cards/{virtual}/unlock", headers=partner.headers),
    )
    _no_5xx(list(responses))
    # Whichever came first decided; the other finds a final lock on its card (409).
    locked, reported = responses[0].status_code, responses[1].status_code
    assert sorted((locked, reported)) in ([200, 409], [201, 409]), (locked, reported)
    carriers = await _carriers(app, session, virtual)
    assert {c.id for c in carriers} == {virtual, physical}
    assert all(c.status == "LOCKED" and c.lock_reason in (1, 2) for c in carriers), [
        (c.id, c.status, c.lock_reason) for c in carriers
    ]
