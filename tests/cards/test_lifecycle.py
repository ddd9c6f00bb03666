"""The card status machine and the spend controls: every pair of states, every lock code, every
control on both its approve and decline side."""

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards import controls, jobs, lifecycle
from cardcore.cards.lifecycle import LOCK_REASONS, STATES, TRANSITIONS
from cardcore.kit.errors import CardcoreError
from cardcore.models import Card, Program
from tests.cards.helpers import issue
from tests.factories import CardProgram, Partner, bearer, make_card_program


@pytest.fixture
async def setup(app: FastAPI, partner: Partner) -> CardProgram:
    return await make_card_program(app, partner)


async def _card(
    session: AsyncSession, client: AsyncClient, partner: Partner, setup: CardProgram, status: str
) -> Card:
    card_id = (await issue(client, partner, setup)).json()["data"]["id"]
    await session.execute(
        update(Card)
        .where(Card.id == card_id)
        .values(status=status, lock_reason=3 if status == "LOCKED" else None)
    )
    await session.commit()
    card = await session.get(Card, card_id)
    assert card is not None
    await session.refresh(card)
    return card


async def test_every_pair_of_states(
    client: AsyncClient, partner: Partner, setup: CardProgram, session: AsyncSession
) -> None:
    for start, to in itertools.product(STATES, STATES):
        card = await _card(session, client, partner, setup, start)
        code = 3 if to == "LOCKED" else None
        if to in TRANSITIONS[start]:
            await lifecycle.transition(session, card, to, actor="test", lock_code=code)
            assert card.status == to, (start, to)
        else:
            with pytest.raises(CardcoreError) as refused:
                await lifecycle.transition(session, card, to, actor="test", lock_code=code)
            assert refused.value.code == "INVALID_CARD_TRANSITION", (start, to)
            assert start in refused.value.message
            assert card.status == start
        await session.rollback()


@pytest.mark.parametrize("code", sorted(LOCK_REASONS))
async def test_every_lock_code(
    client: AsyncClient, partner: Partner, setup: CardProgram, code: int
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    locked = await client.post(
        f"/v1/cards/{card['id']}/lock", json={"reason_code": code}, headers=partner.headers
    )
    assert locked.status_code == 200
    data = locked.json()["data"]
    assert (data["status"], data["lock_reason"], data["failure_action_code"]) == (
        "LOCKED",
        code,
        LOCK_REASONS[code].failure_action_code,
    )
    unlocked = await client.post(f"/v1/cards/{card['id']}/unlock", headers=partner.headers)
    if LOCK_REASONS[code].irreversible:
        assert (unlocked.status_code, unlocked.json()["code"]) == (409, "LOCK_IRREVERSIBLE")
    else:
        assert unlocked.json()["data"]["status"] == "ACTIVE"


def test_seed_003_failure_action_codes() -> None:
    assert {c: r.failure_action_code for c, r in LOCK_REASONS.items() if c <= 8} == {
        1: "2008",
        2: "2009",
        3: "1000",
        4: "1016",
        5: "1018",
        6: "1006",
        7: "1002",
        8: "1011",
    }
    assert {c for c, r in LOCK_REASONS.items() if r.irreversible} == {1, 2, 5, 8}


async def test_freeze_close_network_lock_and_seed_002_status(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    session: AsyncSession,
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    base = f"/v1/cards/{card['id']}"
    assert (await client.post(base + "/freeze", headers=partner.headers)).json()["data"][
        "status"
    ] == "FROZEN"
    assert (await client.post(base + "/unfreeze", headers=partner.headers)).json()["data"][
        "status"
    ] == "ACTIVE"
    blocked = await client.post(base + "/status", json={"status": "BLOCK"}, headers=partner.headers)
    assert (blocked.json()["data"]["status"], blocked.json()["data"]["lock_reason"]) == (
        "LOCKED",
        3,
    )
    assert (
        await client.post(base + "/status", json={"status": "ACTIVE"}, headers=partner.headers)
    ).json()["data"]["status"] == "ACTIVE"
    network = await client.post(
        "/v1/admin/network-keys", json={"name": "processor"}, headers=setup.admin.headers
    )
    network_key = {"X-API-Key": network.json()["data"]["secret"]}
    by_network = await client.post(base + "/lock", json={"reason_code": 6}, headers=network_key)
    assert by_network.json()["data"]["failure_action_code"] == "1006"
    assert (await client.post(base + "/unlock", headers=network_key)).status_code == 403
    closed = await client.delete(base, headers=partner.headers)
    assert closed.json()["data"]["status"] == "CLOSED"
    for path in ("/unlock", "/freeze"):
        assert (await client.post(base + path, headers=partner.headers)).json()[
            "code"
        ] == "INVALID_CARD_TRANSITION"
    assert (await client.get(base, headers=partner.headers)).json()["data"]["status"] == "CLOSED"


async def test_cardholder_freeze_and_tighten_only(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    token = (
        await client.post(
            f"/v1/users/{setup.holder.user_id}/sessions", json={}, headers=partner.headers
        )
    ).json()["data"]["access_token"]
    me = bearer(token)
    assert (await client.post(f"/v1/me/cards/{card['id']}/freeze", headers=me)).json()["data"][
        "status"
    ] == "FROZEN"
    assert (await client.post(f"/v1/me/cards/{card['id']}/unfreeze", headers=me)).json()["data"][
        "status"
    ] == "ACTIVE"
    strict = {
        "channels": {"ATM": False},
        "limits": [{"kind": "amount", "period": "day", "value": 10_000}],
    }
    assert (
        await client.put(f"/v1/cards/{card['id']}/controls", json=strict, headers=partner.headers)
    ).status_code == 200
    tighter = {
        "channels": {"ATM": False, "ECOM": False},
        "limits": [{"kind": "amount", "period": "day", "value": 5_000}],
    }
    assert (
        await client.put(f"/v1/me/cards/{card['id']}/controls", json=tighter, headers=me)
    ).status_code == 200
    for looser in (
        {
            "channels": {"ECOM": False},
            "limits": [{"kind": "amount", "period": "day", "value": 5_000}],
        },
        {
            "channels": {"ATM": False, "ECOM": False},
            "limits": [{"kind": "amount", "period": "day", "value": 6_000}],
        },
        {"channels": {"ATM": False, "ECOM": False}},
    ):
        refused = await client.put(f"/v1/me/cards/{card['id']}/controls", json=looser, headers=me)
        assert refused.status_code == 403, looser
    reset = await client.post(f"/v1/cards/{card['id']}/controls/reset", headers=partner.headers)
    assert reset.json()["data"] == {"channels": {}, "limits": [], "mcc": None, "countries": None}


async def test_program_maxima_bound_every_card(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    session: AsyncSession,
) -> None:
    await session.execute(
        update(Program)
        .where(Program.id == partner.program_id)
        .values(
            control_maxima=[
                {"kind": "amount", "period": "transaction", "channel": "ALL", "value": 50_000}
            ]
        )
    )
    await session.commit()
    card = (await issue(client, partner, setup)).json()["data"]
    above = await client.put(
        f"/v1/cards/{card['id']}/controls",
        json={"limits": [{"kind": "amount", "period": "transaction", "value": 60_000}]},
        headers=partner.headers,
    )
    assert above.json()["errors"][0]["code"] == "LIMIT_ABOVE_PROGRAM_MAXIMUM"
    decision = await client.post(
        f"/v1/cards/{card['id']}/controls/evaluate",
        json={
            "amount": 50_001,
            "currency": "EUR",
            "channel": "POS",
            "mcc": "5411",
            "country": "PL",
        },
        headers=partner.headers,
    )
    assert decision.json()["data"] == {
        "approved": False,
        "response_code": "61",
        "rule": "AMOUNT_PER_TRANSACTION_ALL",
    }


# -- evaluate(): each control on both sides ------------------------------------------------------


def _card_with(
    raw_controls: dict[str, Any], status: str = "ACTIVE", lock: int | None = None
) -> Card:
    return Card(
        status=status, lock_reason=lock, controls=raw_controls, expiry_month=12, expiry_year=2099
    )


PROGRAM = Program(timezone="Europe/Warsaw", home_country="PL", control_maxima=[])
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _tx(**overrides) -> controls.Transaction:  # type: ignore[no-untyped-def]
    values = {
        "amount": 1_000,
        "currency": "EUR",
        "channel": "POS",
        "entry_mode": "CHIP",
        "mcc": "5411",
        "country": "PL",
    }
    return controls.Transaction(**{**values, **overrides})


def _decide(
    card: Card, tx: controls.Transaction, spent: dict[str, Any] | None = None
) -> tuple[bool, str]:
    decision = controls.evaluate(card, tx, program=PROGRAM, spent=spent or {}, now=NOW)
    return decision.approved, decision.response_code


@pytest.mark.parametrize(
    ("raw", "allowed_tx", "declined_tx", "code"),
    [
        (
            {"channels": {"ECOM": False}},
            {"channel": "POS"},
            {"channel": "ECOM", "entry_mode": "ECOM"},
            "57",
        ),
        ({"channels": {"ATM": False}}, {}, {"channel": "ATM"}, "57"),
        ({"channels": {"MOTO": False}}, {}, {"channel": "MOTO", "entry_mode": "MANUAL"}, "57"),
        ({"channels": {"CONTACTLESS": False}}, {}, {"entry_mode": "CONTACTLESS"}, "57"),
        ({"channels": {"MAGSTRIPE": False}}, {}, {"entry_mode": "MAGSTRIPE"}, "57"),
        ({"channels": {"INTERNATIONAL": False}}, {"country": "PL"}, {"country": "DE"}, "57"),
        (
            {"limits": [{"kind": "amount", "period": "transaction", "value": 1_000}]},
            {"amount": 1_000},
            {"amount": 1_001},
            "61",
        ),
        (
            {
                "limits": [
                    {"kind": "amount", "period": "transaction", "channel": "ATM", "value": 500}
                ]
            },
            {"amount": 5_000},
            {"amount": 501, "channel": "ATM"},
            "61",
        ),
        (
            {"mcc": {"mode": "block", "codes": ["7995", "5812-5814"]}},
            {"mcc": "5811"},
            {"mcc": "5813"},
            "62",
        ),
        ({"mcc": {"mode": "allow", "codes": ["5411"]}}, {"mcc": "5411"}, {"mcc": "5412"}, "62"),
        (
            {"countries": {"mode": "block", "codes": ["RU"]}},
            {"country": "DE"},
            {"country": "RU"},
            "62",
        ),
        (
            {"countries": {"mode": "allow", "codes": ["PL", "DE"]}},
            {"country": "DE"},
            {"country": "FR"},
            "62",
        ),
    ],
)
def test_each_control_approves_and_declines(
    raw: dict[str, Any], allowed_tx: dict[str, Any], declined_tx: dict[str, Any], code: str
) -> None:
    card = _card_with(controls.parse(raw).model_dump(mode="json", exclude_none=True))
    assert _decide(card, _tx(**allowed_tx)) == (True, "00")
    assert _decide(card, _tx(**declined_tx)) == (False, code)


@pytest.mark.parametrize("period", ["day", "week", "month", "year", "lifetime"])
def test_period_limits_use_spend_so_far(period: str) -> None:
    card = _card_with(
        {
            "limits": [
                {"kind": "amount", "period": period, "channel": "ALL", "value": 10_000},
                {"kind": "count", "period": period, "channel": "POS", "value": 3},
            ]
        }
    )
    assert _decide(card, _tx(amount=1_000), {("ALL", period): (9_000, 1)}) == (True, "00")
    assert _decide(card, _tx(amount=1_001), {("ALL", period): (9_000, 1)}) == (False, "61")
    assert _decide(card, _tx(amount=10), {("POS", period): (10, 3)}) == (False, "65")
    assert _decide(card, _tx(amount=10, channel="ATM"), {("POS", period): (10, 3)}) == (True, "00")


@pytest.mark.parametrize(
    ("status", "lock", "code"),
    [
        ("FROZEN", None, "05"),
        ("INACTIVE", None, "05"),
        ("CLOSED", None, "05"),
        ("EXPIRED", None, "54"),
        ("LOCKED", 1, "41"),
        ("LOCKED", 2, "43"),
        ("LOCKED", 7, "59"),
        ("LOCKED", 6, "75"),
        ("LOCKED", 3, "05"),
    ],
)
def test_card_state_declines(status: str, lock: int | None, code: str) -> None:
    assert _decide(_card_with({}, status, lock), _tx()) == (False, code)


def test_an_expired_month_declines_54_before_the_job_runs() -> None:
    card = _card_with({})
    card.expiry_year, card.expiry_month = 2026, 10
    assert _decide(card, _tx()) == (False, "54")


def test_periods_follow_the_programs_time_zone() -> None:
    late_utc = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)  # already the 23rd in Warsaw
    starts = controls.period_starts("Europe/Warsaw", late_utc)
    assert starts["day"] == datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    assert starts["week"] == datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # Monday the 23rd
    assert starts["month"] == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)


async def test_counters_feed_the_evaluate_endpoint(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    session: AsyncSession,
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    await client.put(
        f"/v1/cards/{card['id']}/controls",
        json={"limits": [{"kind": "amount", "period": "day", "value": 3_000}]},
        headers=partner.headers,
    )
    row = await session.get(Card, card["id"])
    program = await session.get(Program, partner.program_id)
    assert row is not None
    assert program is not None
    await controls.record_spend(session, row, program, _tx(amount=2_500), datetime.now(UTC))
    await session.commit()
    body = {"amount": 600, "currency": "EUR", "channel": "POS", "mcc": "5411", "country": "PL"}
    declined = await client.post(
        f"/v1/cards/{card['id']}/controls/evaluate", json=body, headers=partner.headers
    )
    assert declined.json()["data"] == {
        "approved": False,
        "response_code": "61",
        "rule": "AMOUNT_PER_DAY_ALL",
    }
    approved = await client.post(
        f"/v1/cards/{card['id']}/controls/evaluate",
        json={**body, "amount": 500},
        headers=partner.headers,
    )
    assert approved.json()["data"]["approved"] is True


async def test_the_expiry_job(
    client: AsyncClient, partner: Partner, setup: CardProgram, session: AsyncSession
) -> None:
    from cardcore.kit.jobs import JobContext

    card = (await issue(client, partner, setup)).json()["data"]
    await session.execute(
        update(Card).where(Card.id == card["id"]).values(expiry_year=2025, expiry_month=1)
    )
    await session.commit()
    await jobs.expire_cards(session, {}, JobContext())
    await session.commit()
    assert (await client.get(f"/v1/cards/{card['id']}", headers=partner.headers)).json()["data"][
        "status"
    ] == "EXPIRED"
