"""Every decline `evaluate()` can give, reached through POST /v1/network/authorizations: each rule
with its ISO 8583 response code and its name, recorded as a DECLINED transaction that holds
nothing."""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards.lifecycle import LOCK_REASONS
from cardcore.models import Card, Program
from tests.authorizations.network import authorize, available
from tests.factories import Partner, World

Setup = Callable[[AsyncClient, AsyncSession, Partner, World], Awaitable[None]]


def controls(**body: Any) -> Setup:
    async def put(
        client: AsyncClient, session: AsyncSession, partner: Partner, world: World
    ) -> None:
        response = await client.put(
            f"/v1/cards/{world.card.id}/controls", json=body, headers=partner.headers
        )
        assert response.status_code == 200, response.text

    return put


def card_row(**values: Any) -> Setup:
    async def change(
        client: AsyncClient, session: AsyncSession, partner: Partner, world: World
    ) -> None:
        await session.execute(update(Card).where(Card.id == world.card.id).values(**values))
        await session.commit()

    return change


def program_row(**values: Any) -> Setup:
    async def change(
        client: AsyncClient, session: AsyncSession, partner: Partner, world: World
    ) -> None:
        await session.execute(
            update(Program).where(Program.id == partner.program_id).values(**values)
        )
        await session.commit()

    return change


def both(*steps: Setup) -> Setup:
    async def run(
        client: AsyncClient, session: AsyncSession, partner: Partner, world: World
    ) -> None:
        for step in steps:
            await step(client, session, partner, world)

    return run


def call(path: str) -> Setup:
    async def post(
        client: AsyncClient, session: AsyncSession, partner: Partner, world: World
    ) -> None:
        response = await client.post(f"/v1/cards/{world.card.id}/{path}", headers=partner.headers)
        assert response.status_code in (200, 204), response.text

    return post


def spend_first(amount: int) -> Setup:
    """An approved purchase first, so that a period's counters are not empty."""

    async def buy(
        client: AsyncClient, session: AsyncSession, partner: Partner, world: World
    ) -> None:
        assert (await authorize(client, world, amount=amount))["approved"] is True

    return buy


GERMAN_SHOP = {"merchant": {"name": "Laden", "mcc": "5411", "country": "DE"}}
PERIODS = ("day", "week", "month", "year", "lifetime")

CASES: list[tuple[str, Setup, dict[str, Any], str, str]] = [
    *(
        (
            f"channel {channel}",
            controls(channels={channel: False}),
            {"channel": channel, "entry_mode": "ECOM" if channel == "ECOM" else "CHIP"},
            "57",
            f"CHANNEL_{channel}_DISABLED",
        )
        for channel in ("POS", "ECOM", "ATM", "MOTO")
    ),
    (
        "channel CONTACTLESS",
        controls(channels={"CONTACTLESS": False}),
        {"entry_mode": "CONTACTLESS"},
        "57",
        "CHANNEL_CONTACTLESS_DISABLED",
    ),
    (
        "channel MAGSTRIPE",
        controls(channels={"MAGSTRIPE": False}),
        {"entry_mode": "MAGSTRIPE"},
        "57",
        "CHANNEL_MAGSTRIPE_DISABLED",
    ),
    (
        "channel INTERNATIONAL",
        both(program_row(home_country="PL"), controls(channels={"INTERNATIONAL": False})),
        GERMAN_SHOP,
        "57",
        "CHANNEL_INTERNATIONAL_DISABLED",
    ),
    (
        "country blocked",
        controls(countries={"mode": "block", "codes": ["DE"]}),
        GERMAN_SHOP,
        "62",
        "COUNTRIES_BLOCKED",
    ),
    (
        "country not allowed",
        controls(countries={"mode": "allow", "codes": ["PL"]}),
        GERMAN_SHOP,
        "62",
        "COUNTRIES_NOT_ALLOWED",
    ),
    (
        "mcc blocked",
        controls(mcc={"mode": "block", "codes": ["7995", "5400-5499"]}),
        {},
        "62",
        "MCC_BLOCKED",
    ),
    (
        "mcc not allowed",
        controls(mcc={"mode": "allow", "codes": ["5812-5814"]}),
        {},
        "62",
        "MCC_NOT_ALLOWED",
    ),
    (
        "amount per transaction",
        controls(limits=[{"kind": "amount", "period": "transaction", "value": 999}]),
        {},
        "61",
        "AMOUNT_PER_TRANSACTION_ALL",
    ),
    (
        "amount per transaction on one channel",
        controls(
            limits=[{"kind": "amount", "period": "transaction", "channel": "POS", "value": 5}]
        ),
        {},
        "61",
        "AMOUNT_PER_TRANSACTION_POS",
    ),
    *(
        (
            f"amount per {period}",
            both(
                controls(limits=[{"kind": "amount", "period": period, "value": 1_500}]),
                spend_first(600),
            ),
            {},
            "61",
            f"AMOUNT_PER_{period.upper()}_ALL",
        )
        for period in PERIODS
    ),
    *(
        (
            f"count per {period}",
            both(
                controls(limits=[{"kind": "count", "period": period, "value": 1}]),
                spend_first(100),
            ),
            {},
            "65",
            f"COUNT_PER_{period.upper()}_ALL",
        )
        for period in PERIODS
    ),
    (
        "program maximum",
        program_row(control_maxima=[{"kind": "amount", "period": "transaction", "value": 500}]),
        {},
        "61",
        "AMOUNT_PER_TRANSACTION_ALL",
    ),
    ("frozen", call("freeze"), {}, "05", "CARD_FROZEN"),
    ("inactive", card_row(status="INACTIVE"), {}, "05", "CARD_INACTIVE"),
    ("closed", card_row(status="CLOSED"), {}, "05", "CARD_CLOSED"),
    ("expired status", card_row(status="EXPIRED"), {}, "54", "CARD_EXPIRED"),
    ("past expiry", card_row(expiry_year=2020, expiry_month=1), {}, "54", "CARD_EXPIRED"),
    *(
        (
            f"locked {reason.name}",
            card_row(status="LOCKED", lock_reason=code, previous_status="ACTIVE"),
            {},
            reason.iso_response,
            f"CARD_LOCKED_{reason.name}",
        )
        for code, reason in LOCK_REASONS.items()
    ),
]


@pytest.mark.parametrize(
    ("setup", "message", "code", "reason"),
    [
        pytest.param(setup, message, code, reason, id=name)
        for name, setup, message, code, reason in CASES
    ],
)
async def test_each_rule_declines_through_the_network(
    client: AsyncClient,
    session: AsyncSession,
    partner: Partner,
    world: World,
    setup: Setup,
    message: dict[str, Any],
    code: str,
    reason: str,
) -> None:
    await setup(client, session, partner, world)
    before = await available(client, partner, world)
    answer = await authorize(client, world, **message)
    assert (answer["approved"], answer["response_code"], answer["decline_reason"]) == (
        False,
        code,
        reason,
    )
    assert answer["held_amount"] == 0
    assert await available(client, partner, world) == before, "a decline holds nothing"
    recorded = (
        await client.get(f"/v1/transactions/{answer['authorization_id']}", headers=partner.headers)
    ).json()["data"]
    assert (recorded["status"], recorded["decline_reason"]) == ("DECLINED", reason)
