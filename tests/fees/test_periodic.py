"""The periodic card fee job (`fees/periodic.py`): charged in arrears for each of the recent whole
periods (`recent_periods`: the last 7 days, 4 ISO weeks, 2 months before `now`, oldest first),
so that a period the job did not run for is charged late rather than never; once per card and
period, by the schedule in effect when the period ended, waived by rule, and following the
program's policy when the balance cannot pay. A card made at or after a period's end is not
charged for it.

Time. The job takes `now`; most tests pass a fixed `now` in 2030, so the periods in play are
fixed ones. A card made now (in 2026 or later, real time) exists before every one of
them ends, and so would be charged for all of them: where a test is about one period, it moves
the card's `created_at` into that period with an UPDATE (or has the schedule take effect inside
it), so that the earlier periods of the window are not in play, and says so; or it states the
exact periods charged. Ledger transfers are moved in time the same way. Inside the rolled-back
test transaction `now()` is frozen, so every row made in it has the same `created_at`.

The last tests commit for real and run the job through `cardcore worker --once` processes (real
time: the periods are the last days) and through two sessions at once.
"""

import asyncio
import os
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cardcore.config import Settings
from cardcore.db import create_sessionmaker
from cardcore.fees import service
from cardcore.fees.jobs import CHARGE_PERIODIC
from cardcore.fees.periodic import charge_periodic, last_period, recent_periods, waiver_for
from cardcore.fees.schemas import FeeRule
from cardcore.kit.jobs import JobQueue, enqueue
from cardcore.ledger.verify import verify
from cardcore.models import Balance, Card, Event, Fee, FeeSchedule, Job, LedgerTransfer
from cardcore.worker import JOBS
from tests import factories
from tests.authorizations.network import authorize, body, follow_up
from tests.balances.helpers import reload
from tests.cards.helpers import issue
from tests.factories import Partner, World, new_world
from tests.fees.helpers import eur, fees_of, set_policy, set_schedule


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# 5 minutes into February 2030 (UTC): January is the last whole month (and December 2029 the
# one before, in the window), 31 January the last whole day, 21–28 January (2030-W04) the last
# whole ISO week.
FEB = utc(2030, 2, 1, 0, 5)
MAR = utc(2030, 3, 1, 0, 5)
# A moment in January 2030: a card made then is charged for January, not for December.
MID_JANUARY = utc(2030, 1, 10, 12)


def monthly(amount: int, *waivers: dict[str, Any]) -> dict[str, Any]:
    return {"type": "CARD_PERIODIC", "period": "MONTHLY", "prices": eur(amount), "waivers": waivers}


async def run(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime, limit: int = 2_000
) -> int:
    """One run of the job in a session of its own, as the worker does, committed."""
    async with sessionmaker() as session:
        made = await charge_periodic(session, now=now, limit=limit)
        await session.commit()
    return made


async def available(client: AsyncClient, partner: Partner, balance_id: str) -> int:
    response = await client.get(f"/v1/balances/{balance_id}", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]["available"]  # type: ignore[no-any-return]


async def periodic_fees(client: AsyncClient, partner: Partner, card_id: str) -> list[Any]:
    found = await fees_of(client, partner.headers, card_id=card_id, type="CARD_PERIODIC")
    return sorted(found, key=lambda fee: (fee["period_end"], fee["period"]))


async def events_of(session: AsyncSession, fee_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await session.execute(
        select(Event.type, Event.data).where(Event.object_id == fee_id).order_by(Event.id)
    )
    return [(row.type, row.data) for row in rows]


async def fee_transfers(session: AsyncSession, fee_id: str) -> list[LedgerTransfer]:
    return list(
        await session.scalars(
            select(LedgerTransfer).where(
                LedgerTransfer.code == "fee", LedgerTransfer.details["fee_id"].astext == fee_id
            )
        )
    )


async def move_card(session: AsyncSession, card_id: str, created_at: datetime) -> None:
    """Pretend the card was made at `created_at` (an UPDATE: the API stamps the real time)."""
    await session.execute(update(Card).where(Card.id == card_id).values(created_at=created_at))
    await session.commit()


async def move_cards(session: AsyncSession, program_id: str, created_at: datetime) -> None:
    """Pretend every card of the program was made at `created_at`."""
    await session.execute(
        update(Card).where(Card.program_id == program_id).values(created_at=created_at)
    )
    await session.commit()


async def charged_periods(session: AsyncSession, card_id: str) -> list[str]:
    """The periods the card has a periodic fee line for, whatever its status, sorted."""
    return sorted(
        await session.scalars(
            select(Fee.period).where(Fee.card_id == card_id, Fee.type == "CARD_PERIODIC")
        )
    )


async def world(
    app: FastAPI, *funding: int, name: str = "Fees"
) -> tuple[Partner, World, tuple[factories.Card, ...]]:
    """A program of its own (not the `partner` fixture's) with a card per amount in `funding`,
    each on a balance of its own funded by it (factories.make_world)."""
    made = await new_world(app, name, funding)
    return made.partner, made, made.cards


# -- charging --------------------------------------------------------------------------------------


async def test_a_monthly_fee_is_charged_once_for_the_month_that_ended(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The cards are made in January 2030 (an UPDATE): December, also in the window at `FEB`,
    is not theirs."""
    partner, base, (first, second) = await world(app, 10_000, 2_000)
    await move_cards(session, partner.program_id, MID_JANUARY)
    schedule = await set_schedule(client, base.admin.token, [monthly(499)])

    assert await run(sessionmaker, FEB) == 2
    assert await charged_periods(session, first.id) == ["2030-01"]
    (line,) = await periodic_fees(client, partner, first.id)
    assert {k: line[k] for k in ("type", "status", "amount", "currency", "period")} == {
        "type": "CARD_PERIODIC",
        "status": "CHARGED",
        "amount": 499,
        "currency": "EUR",
        "period": "2030-01",
    }
    assert datetime.fromisoformat(line["period_start"]) == utc(2030, 1, 1)
    assert datetime.fromisoformat(line["period_end"]) == utc(2030, 2, 1)
    assert (line["schedule_id"], line["balance_id"]) == (schedule["id"], first.balance_id)
    assert line["waiver"] is None
    assert line["charged_at"] is not None
    assert await available(client, partner, first.balance_id) == 9_501
    assert await available(client, partner, second.balance_id) == 1_501

    # The money went from the balance to the program's fee revenue, in one transfer.
    (moved,) = await fee_transfers(session, line["id"])
    account = await session.scalar(
        select(Balance.ledger_account_id).where(Balance.id == first.balance_id)
    )
    revenue = await service.revenue_account(session, partner.program_id, "EUR")
    assert (moved.id, moved.debit_account_id, moved.credit_account_id, moved.amount) == (
        line["ledger_transfer_id"],
        account,
        revenue,
        499,
    )
    ((kind, data),) = await events_of(session, line["id"])
    assert kind == "fee.charged"
    assert {k: data[k] for k in ("fee_id", "type", "amount", "card_id", "ledger_transfer_id")} == {
        "fee_id": line["id"],
        "type": "CARD_PERIODIC",
        "amount": 499,
        "card_id": first.id,
        "ledger_transfer_id": moved.id,
    }

    # Again, and again later in the same month: nothing more.
    assert await run(sessionmaker, FEB) == 0
    assert await run(sessionmaker, FEB + timedelta(days=20)) == 0
    assert len(await periodic_fees(client, partner, first.id)) == 1
    assert await available(client, partner, first.balance_id) == 9_501
    assert len(await fee_transfers(session, line["id"])) == 1

    # March: February is due; January, still in the window, is not charged again.
    assert await run(sessionmaker, MAR) == 2
    assert await run(sessionmaker, MAR) == 0
    lines = await periodic_fees(client, partner, first.id)
    assert [(f["period"], f["status"], f["amount"]) for f in lines] == [
        ("2030-01", "CHARGED", 499),
        ("2030-02", "CHARGED", 499),
    ]
    assert await available(client, partner, first.balance_id) == 9_002
    assert await verify(session) == []


async def test_daily_and_weekly_fees_in_the_programs_time_zone(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Warsaw (UTC+1 in winter): 31 January 2030 ends there at 23:00 UTC. The card is made at
    23:30 UTC on Saturday 26 January (an UPDATE): already Sunday the 27th in Warsaw, the last
    day of 2030-W04 there. So Warsaw's 26 January (it ended at 23:00 UTC) and the weeks before
    W04 are not the card's, although they are in the window; in UTC they would be."""
    partner, base, (card,) = await world(app, 1_000)
    await move_card(session, card.id, utc(2030, 1, 26, 23, 30))
    await set_policy(client, base.admin.token, timezone="Europe/Warsaw")
    await set_schedule(
        client,
        base.admin.token,
        [
            {"type": "CARD_PERIODIC", "period": "DAILY", "prices": eur(10)},
            {"type": "CARD_PERIODIC", "period": "WEEKLY", "prices": eur(50)},
        ],
    )
    # 23:30 in Warsaw on Thursday 31 January: the 30th is the last whole day there; the 27th
    # to the 30th and W04 are due.
    assert await run(sessionmaker, utc(2030, 1, 31, 22, 30)) == 5
    # 00:30 in Warsaw on Friday 1 February (still the 31st in UTC): the 31st has ended.
    assert await run(sessionmaker, utc(2030, 1, 31, 23, 30)) == 1
    assert await run(sessionmaker, utc(2030, 1, 31, 23, 59)) == 0
    lines = await periodic_fees(client, partner, card.id)
    assert [
        (
            f["period"],
            f["amount"],
            f["status"],
            datetime.fromisoformat(f["period_start"]),
            datetime.fromisoformat(f["period_end"]),
        )
        for f in lines
    ] == [
        ("2030-01-27", 10, "CHARGED", utc(2030, 1, 26, 23), utc(2030, 1, 27, 23)),
        ("2030-W04", 50, "CHARGED", utc(2030, 1, 20, 23), utc(2030, 1, 27, 23)),
        ("2030-01-28", 10, "CHARGED", utc(2030, 1, 27, 23), utc(2030, 1, 28, 23)),
        ("2030-01-29", 10, "CHARGED", utc(2030, 1, 28, 23), utc(2030, 1, 29, 23)),
        ("2030-01-30", 10, "CHARGED", utc(2030, 1, 29, 23), utc(2030, 1, 30, 23)),
        ("2030-01-31", 10, "CHARGED", utc(2030, 1, 30, 23), utc(2030, 1, 31, 23)),
    ]
    assert await available(client, partner, card.balance_id) == 1_000 - 50 - 5 * 10
    assert await verify(session) == []


async def test_closed_replaced_and_newer_cards_are_not_charged(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    partner, base, _ = await world(app)
    assert (await reload(client, partner, base.holder.balance_id, 10_000)).status_code == 200

    async def new_card() -> str:
        issued = await issue(client, partner, base)
        assert issued.status_code == 201, issued.text
        return issued.json()["data"]["id"]  # type: ignore[no-any-return]

    live, closed, lost, newer, just_before = [await new_card() for _ in range(5)]
    assert (await client.delete(f"/v1/cards/{closed}", headers=partner.headers)).status_code == 200
    report = await client.post(
        f"/v1/cards/{lost}/reports", json={"reason": "LOST"}, headers=partner.headers
    )
    replaced = await client.post(
        f"/v1/card-reports/{report.json()['data']['id']}/replace", headers=partner.headers
    )
    assert replaced.status_code == 200, replaced.text
    replacement = replaced.json()["data"]["id"]
    # January ends at 2030-02-01 00:00 UTC: a card made at that instant is February's.
    await move_card(session, newer, utc(2030, 2, 1))
    await move_card(session, just_before, utc(2030, 2, 1) - timedelta(microseconds=1))
    await set_schedule(client, base.admin.token, [monthly(100)])

    async def charged() -> list[tuple[str, str]]:
        rows = await session.execute(
            select(Fee.card_id, Fee.period).where(Fee.type == "CARD_PERIODIC")
        )
        return sorted((card, period) for card, period in rows)

    # At `FEB` the window is December and January: the cards made through the API (real time,
    # years before) pay for both, the one made just before January ended for January only,
    # the one made as it ended for neither.
    assert await run(sessionmaker, FEB) == 5
    assert await charged() == sorted(
        [
            (live, "2029-12"),
            (live, "2030-01"),
            (replacement, "2029-12"),
            (replacement, "2030-01"),
            (just_before, "2030-01"),
        ]
    )
    assert await available(client, partner, base.holder.balance_id) == 10_000 - 500

    # The newer card pays for February, its first whole period; the closed and replaced never.
    assert await run(sessionmaker, MAR) == 4
    assert await charged() == sorted(
        [
            (live, "2029-12"),
            (live, "2030-01"),
            (live, "2030-02"),
            (replacement, "2029-12"),
            (replacement, "2030-01"),
            (replacement, "2030-02"),
            (just_before, "2030-01"),
            (just_before, "2030-02"),
            (newer, "2030-02"),
        ]
    )
    assert await available(client, partner, base.holder.balance_id) == 10_000 - 900
    assert (
        await session.scalar(
            select(func.count()).select_from(Fee).where(Fee.card_id.in_([closed, lost]))
        )
        == 0
    )
    assert await verify(session) == []


async def test_the_version_in_effect_when_the_period_ended_prices_it(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The card is made through the API (real time, years before): every period in the window
    is the card's, and only the schedule's versions decide what each one costs."""
    partner, base, (card,) = await world(app, 10_000)
    # The first version takes effect in the middle of January: December, in the window at the
    # first run, ended before any version was in effect and has no fee.
    v1 = await set_schedule(
        client, base.admin.token, [monthly(300)], effective_from="2030-01-15T00:00:00Z"
    )
    # One second after January ended: not January's price, although it is in effect at `now`.
    v2 = await set_schedule(
        client, base.admin.token, [monthly(700)], effective_from="2030-02-01T00:00:01Z"
    )
    # One second after February ended: not February's.
    v3 = await set_schedule(
        client, base.admin.token, [monthly(900)], effective_from="2030-03-01T00:00:01Z"
    )
    assert [v["version"] for v in (v1, v2, v3)] == [1, 2, 3]

    assert await run(sessionmaker, utc(2030, 2, 20)) == 1
    assert await charged_periods(session, card.id) == ["2030-01"]
    # No run in March: in April, February and March are both due, each priced by the version
    # in effect when it ended.
    assert await run(sessionmaker, utc(2030, 4, 20)) == 2
    lines = await periodic_fees(client, partner, card.id)
    assert [(f["period"], f["amount"], f["schedule_id"]) for f in lines] == [
        ("2030-01", 300, v1["id"]),
        ("2030-02", 700, v2["id"]),
        ("2030-03", 900, v3["id"]),
    ]
    assert await available(client, partner, card.balance_id) == 10_000 - 1_900

    # A version that drops the fee: April is not charged, and nothing charged before changes.
    await set_schedule(client, base.admin.token, [], effective_from="2030-04-15T00:00:00Z")
    assert await run(sessionmaker, utc(2030, 5, 2)) == 0
    again = await periodic_fees(client, partner, card.id)
    assert [(f["period"], f["amount"]) for f in again] == [
        ("2030-01", 300),
        ("2030-02", 700),
        ("2030-03", 900),
    ]


# -- catching up -----------------------------------------------------------------------------------


def daily(amount: int) -> dict[str, Any]:
    return {"type": "CARD_PERIODIC", "period": "DAILY", "prices": eur(amount)}


async def test_days_the_job_did_not_run_for_are_charged_late_once_each(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The card is made at noon on 24 January 2030 (an UPDATE). The job runs on the 28th and
    the 29th, then not for three days (workers down): the run on 1 February charges the 29th,
    30th and 31st, each once, each for its own day."""
    partner, base, (card,) = await world(app, 1_000)
    await move_card(session, card.id, utc(2030, 1, 24, 12))
    await set_schedule(client, base.admin.token, [daily(10)])

    # The first run: every day since the card was made (the 24th, its first, in full).
    assert await run(sessionmaker, utc(2030, 1, 28, 0, 5)) == 4
    assert await charged_periods(session, card.id) == [
        "2030-01-24",
        "2030-01-25",
        "2030-01-26",
        "2030-01-27",
    ]
    assert await run(sessionmaker, utc(2030, 1, 28, 12)) == 0
    assert await run(sessionmaker, utc(2030, 1, 29, 0, 5)) == 1

    # Three days without a run.
    assert await run(sessionmaker, FEB) == 3
    assert await run(sessionmaker, FEB) == 0
    assert await run(sessionmaker, FEB + timedelta(hours=6)) == 0
    assert await run(sessionmaker, utc(2030, 1, 29, 0, 5)) == 0, "an earlier `now` adds nothing"

    lines = await periodic_fees(client, partner, card.id)
    assert [
        (
            f["period"],
            f["status"],
            f["amount"],
            datetime.fromisoformat(f["period_start"]),
            datetime.fromisoformat(f["period_end"]),
        )
        for f in lines
    ] == [
        (f"2030-01-{day}", "CHARGED", 10, utc(2030, 1, day), utc(2030, 1, day) + timedelta(days=1))
        for day in range(24, 32)
    ]
    counts = await _per_card_and_period(session)
    assert counts == {(card.id, f"2030-01-{day}"): (1, 1) for day in range(24, 32)}
    assert await available(client, partner, card.balance_id) == 1_000 - 8 * 10
    assert await verify(session) == []


async def test_nothing_older_than_the_window_is_charged(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The card is made in November 2029 (an UPDATE) and the schedule is in effect from real
    time (2026): every period since is the card's and has a price. The first run, at `FEB`,
    charges 7 days, 4 weeks and 2 months back, and nothing before: not 24 January (8 days
    back), not 2029-W52, not November. No later run goes back for them."""
    partner, base, (card,) = await world(app, 10_000)
    await move_card(session, card.id, utc(2029, 11, 15))
    await set_schedule(
        client,
        base.admin.token,
        [daily(1), {"type": "CARD_PERIODIC", "period": "WEEKLY", "prices": eur(10)}, monthly(100)],
    )

    assert await run(sessionmaker, FEB) == 7 + 4 + 2
    days = [f"2030-01-{day}" for day in range(25, 32)]
    weeks = ["2030-W01", "2030-W02", "2030-W03", "2030-W04"]
    months = ["2029-12", "2030-01"]
    assert await charged_periods(session, card.id) == sorted(days + weeks + months)
    lines = {f["period"]: f for f in await periodic_fees(client, partner, card.id)}
    # The oldest of each: 25 January; Monday 31 December 2029 to 7 January 2030; December.
    assert [
        (datetime.fromisoformat(lines[p]["period_start"]), lines[p]["amount"])
        for p in ("2030-01-25", "2030-W01", "2029-12")
    ] == [(utc(2030, 1, 25), 1), (utc(2029, 12, 31), 10), (utc(2029, 12, 1), 100)]

    # The next day: 1 February only.
    assert await run(sessionmaker, FEB + timedelta(days=1)) == 1
    assert await charged_periods(session, card.id) == sorted([*days, "2030-02-01", *weeks, *months])
    assert await available(client, partner, card.balance_id) == 10_000 - 8 - 40 - 200
    assert await verify(session) == []


async def test_months_the_job_did_not_run_for_are_charged_two_back(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The card is made in November 2029 (an UPDATE). The job runs on 1 December, then not until
    1 February: December and January are charged then, each once. Then not until 1 May: March
    and April are charged, and February, three months back, never is."""
    partner, base, (card,) = await world(app, 10_000)
    await move_card(session, card.id, utc(2029, 11, 10))
    await set_schedule(client, base.admin.token, [monthly(499)])

    assert await run(sessionmaker, utc(2029, 12, 1, 0, 5)) == 1
    assert await charged_periods(session, card.id) == ["2029-11"]
    assert await run(sessionmaker, FEB) == 2
    assert await run(sessionmaker, FEB) == 0
    assert await charged_periods(session, card.id) == ["2029-11", "2029-12", "2030-01"]
    assert await run(sessionmaker, utc(2030, 5, 1, 0, 5)) == 2
    assert await run(sessionmaker, utc(2030, 5, 20)) == 0

    lines = await periodic_fees(client, partner, card.id)
    assert [
        (f["period"], f["status"], datetime.fromisoformat(f["period_start"])) for f in lines
    ] == [
        ("2029-11", "CHARGED", utc(2029, 11, 1)),
        ("2029-12", "CHARGED", utc(2029, 12, 1)),
        ("2030-01", "CHARGED", utc(2030, 1, 1)),
        ("2030-03", "CHARGED", utc(2030, 3, 1)),
        ("2030-04", "CHARGED", utc(2030, 4, 1)),
    ]
    assert set((await _per_card_and_period(session)).values()) == {(1, 1)}
    assert await available(client, partner, card.balance_id) == 10_000 - 5 * 499
    assert await verify(session) == []


# -- waivers ---------------------------------------------------------------------------------------


async def test_first_month_free(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A period that ends within a month of the card's creation is waived. The cards' creation
    times are set with an UPDATE."""
    partner, base, cards = await world(app, 1_000, 1_000, 1_000, 1_000)
    recent, old, edge, last_minute = cards
    await move_card(session, recent.id, utc(2030, 1, 20, 12))
    # A month later is 31 January 23:59:59: before January ended.
    await move_card(session, old.id, utc(2029, 12, 31, 23, 59, 59))
    # A month later is 1 February 00:00, the very end of January: still the first month.
    await move_card(session, edge.id, utc(2030, 1, 1))
    # 31 January → 28 February (2030 is no leap year): February ends later, on 1 March.
    await move_card(session, last_minute.id, utc(2030, 1, 31, 23))
    await set_schedule(client, base.admin.token, [monthly(499, {"rule": "FIRST_MONTH_FREE"})])

    # At `FEB`, December is in the window too: only `old` was made before it ended, within a
    # month of its end (waived).
    assert await run(sessionmaker, FEB) == 5
    assert await run(sessionmaker, MAR) == 4
    outcome = {}
    for card in cards:
        lines = await periodic_fees(client, partner, card.id)
        outcome[card.id] = [(f["period"], f["status"]) for f in lines]
    assert outcome == {
        recent.id: [("2030-01", "WAIVED"), ("2030-02", "CHARGED")],
        old.id: [("2029-12", "WAIVED"), ("2030-01", "CHARGED"), ("2030-02", "CHARGED")],
        edge.id: [("2030-01", "WAIVED"), ("2030-02", "CHARGED")],
        last_minute.id: [("2030-01", "WAIVED"), ("2030-02", "CHARGED")],
    }
    assert [await available(client, partner, c.balance_id) for c in cards] == [
        501,
        2,
        501,
        501,
    ]

    (waived, _) = await periodic_fees(client, partner, recent.id)
    assert waived["waiver"] == {
        "rule": "FIRST_MONTH_FREE",
        "card_created_at": "2030-01-20T12:00:00+00:00",
    }
    assert (waived["amount"], waived["ledger_transfer_id"], waived["charged_at"]) == (
        499,
        None,
        None,
    )
    assert await fee_transfers(session, waived["id"]) == []
    ((kind, data),) = await events_of(session, waived["id"])
    assert (kind, data["rule"], data["card_id"]) == (
        "fee.waived",
        "FIRST_MONTH_FREE",
        recent.id,
    )
    assert await verify(session) == []


async def _purchases(
    client: AsyncClient, session: AsyncSession, base: World, card: factories.Card, account: str
) -> None:
    """Card spending on the balance, made through the network endpoints (real time), then moved
    in time by UPDATEs of the ledger transfers' created_at:
    - in December 2029: a purchase of 8.00, cleared;
    - in January 2030: 30.00 cleared, 25.00 authorized and cleared for 20.00, a force-posted
      10.00, a refund of 5.00 on the first, and 4.00 authorized but never cleared.
    Settled spend in January: 30 + 20 + 10 - 5 = 55.00 in three purchases."""
    world = replace(base, cards=(card,))

    async def clear(authorization: dict[str, Any], **amount: int) -> None:
        cleared = await follow_up(
            client,
            world,
            "clearings",
            authorization_id=authorization["authorization_id"],
            **amount,
        )
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["approved"] is True, cleared.text

    on_account = (LedgerTransfer.debit_account_id == account) | (
        LedgerTransfer.credit_account_id == account
    )
    await clear(await authorize(client, world, amount=800))
    await session.execute(
        update(LedgerTransfer).where(on_account).values(created_at=utc(2029, 12, 31, 23, 59, 59))
    )
    await session.commit()

    first = await authorize(client, world, amount=3_000)
    await clear(first)
    await clear(await authorize(client, world, amount=2_500), amount=2_000)
    forced = await client.post(
        "/v1/network/force-post-clearings",
        json=body(world, amount=1_000),
        headers=world.network.headers,
    )
    assert forced.json()["approved"] is True, forced.text
    refunded = await follow_up(
        client, world, "refunds", authorization_id=first["authorization_id"], amount=500
    )
    assert refunded.json()["approved"] is True, refunded.text
    assert (await authorize(client, world, amount=400))["approved"] is True
    await session.execute(
        update(LedgerTransfer)
        .where(on_account, LedgerTransfer.created_at != utc(2029, 12, 31, 23, 59, 59))
        .values(created_at=utc(2030, 1, 15, 12))
    )
    await session.commit()


async def test_spend_and_transaction_waivers_read_the_ledger(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The card is made on 1 December 2029 (an UPDATE): December and January are its periods,
    November is not."""
    partner, base, (funded,) = await world(app, 20_000)
    account = await session.scalar(
        select(Balance.ledger_account_id).where(Balance.id == funded.balance_id)
    )
    assert account is not None
    await _purchases(client, session, base, funded, account)
    await move_card(session, funded.id, utc(2029, 12, 1))
    card = await session.get(Card, funded.id)
    assert card is not None
    _, jan_start, jan_end = last_period("MONTHLY", FEB, "UTC")
    _, dec_start, dec_end = last_period("MONTHLY", utc(2030, 1, 1), "UTC")

    async def waiver(rule: dict[str, Any], start: datetime, end: datetime) -> Any:
        parsed = FeeRule.model_validate({**monthly(499), "waivers": [rule]})
        return await waiver_for(session, parsed, card, account, start, end)

    spend = {"rule": "SPEND_AT_LEAST", "amount": 5_500}
    assert await waiver(spend, jan_start, jan_end) == {
        "rule": "SPEND_AT_LEAST",
        "threshold": 5_500,
        "spent": 5_500,
    }
    assert await waiver({**spend, "amount": 5_501}, jan_start, jan_end) is None
    assert await waiver({**spend, "amount": 800}, dec_start, dec_end) == {
        "rule": "SPEND_AT_LEAST",
        "threshold": 800,
        "spent": 800,
    }
    assert await waiver({**spend, "amount": 801}, dec_start, dec_end) is None
    count = {"rule": "TRANSACTIONS_AT_LEAST", "count": 3}
    assert await waiver(count, jan_start, jan_end) == {
        "rule": "TRANSACTIONS_AT_LEAST",
        "threshold": 3,
        "transactions": 3,
    }
    assert await waiver({**count, "count": 4}, jan_start, jan_end) is None
    assert await waiver({**count, "count": 1}, dec_start, dec_end) == {
        "rule": "TRANSACTIONS_AT_LEAST",
        "threshold": 1,
        "transactions": 1,
    }
    assert await waiver({**count, "count": 2}, dec_start, dec_end) is None

    # Through the job, in one run: January is waived by its spend, December (8.00 spent) is
    # charged, each on its own period's ledger.
    before = await available(client, partner, funded.balance_id)
    await set_schedule(
        client,
        base.admin.token,
        [monthly(499, spend, {"rule": "TRANSACTIONS_AT_LEAST", "count": 10})],
    )
    assert await run(sessionmaker, FEB) == 2
    # Earlier: December is already done, November was before the card.
    assert await run(sessionmaker, utc(2030, 1, 1)) == 0
    december, january = await periodic_fees(client, partner, funded.id)
    assert (january["period"], january["status"], january["waiver"]) == (
        "2030-01",
        "WAIVED",
        {"rule": "SPEND_AT_LEAST", "threshold": 5_500, "spent": 5_500},
    )
    assert january["ledger_transfer_id"] is None
    assert (december["period"], december["status"], december["waiver"]) == (
        "2029-12",
        "CHARGED",
        None,
    )
    assert await available(client, partner, funded.balance_id) == before - 499
    assert await verify(session) == []


async def test_transactions_waiver_through_the_job(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    partner, base, (funded,) = await world(app, 20_000)
    account = await session.scalar(
        select(Balance.ledger_account_id).where(Balance.id == funded.balance_id)
    )
    assert account is not None
    await _purchases(client, session, base, funded, account)
    # Made as December ended (an UPDATE): January is its only period in the window.
    await move_card(session, funded.id, utc(2030, 1, 1))
    before = await available(client, partner, funded.balance_id)
    await set_schedule(
        client,
        base.admin.token,
        [
            monthly(
                499,
                {"rule": "SPEND_AT_LEAST", "amount": 100_000},
                {"rule": "TRANSACTIONS_AT_LEAST", "count": 3},
            )
        ],
    )
    assert await run(sessionmaker, FEB) == 1
    (january,) = await periodic_fees(client, partner, funded.id)
    assert (january["period"], january["status"], january["waiver"]) == (
        "2030-01",
        "WAIVED",
        {"rule": "TRANSACTIONS_AT_LEAST", "threshold": 3, "transactions": 3},
    )
    assert await available(client, partner, funded.balance_id) == before


# -- when the balance cannot pay -------------------------------------------------------------------


async def test_skip_by_default(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The card is made in January 2030 (an UPDATE): its only period at `FEB`."""
    partner, base, (card,) = await world(app, 100)
    await move_card(session, card.id, MID_JANUARY)
    await set_schedule(client, base.admin.token, [monthly(499)])
    assert await run(sessionmaker, FEB) == 1
    (line,) = await periodic_fees(client, partner, card.id)
    assert (line["period"], line["status"], line["reason"], line["ledger_transfer_id"]) == (
        "2030-01",
        "SKIPPED",
        "INSUFFICIENT_FUNDS",
        None,
    )
    assert [kind for kind, _ in await events_of(session, line["id"])] == ["fee.skipped"]
    await reload(client, partner, card.balance_id, 1_000)
    assert await run(sessionmaker, FEB) == 0, "a skipped period is not tried again"
    assert await service.retry_due(session, now=FEB + timedelta(days=30)) == 0
    assert await available(client, partner, card.balance_id) == 1_100
    # Nor when it is the older of the two months in the window: only February is charged.
    assert await run(sessionmaker, MAR) == 1
    lines = await periodic_fees(client, partner, card.id)
    assert [(f["period"], f["status"]) for f in lines] == [
        ("2030-01", "SKIPPED"),
        ("2030-02", "CHARGED"),
    ]
    assert await available(client, partner, card.balance_id) == 1_100 - 499


async def test_retry_leaves_the_fee_due_until_the_balance_can_pay(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The cards are made in January 2030 (an UPDATE): their only period at `FEB`. The retry
    window is counted on the clocks of the jobs: from the periodic job's `now` (`FEB`), retried
    by the retry job's."""
    partner, base, (card, other) = await world(app, 100, 100)
    await move_cards(session, partner.program_id, MID_JANUARY)
    await set_policy(client, base.admin.token, fee_shortfall_policy="RETRY", fee_retry_days=3)
    await set_schedule(client, base.admin.token, [monthly(499)])
    assert await run(sessionmaker, FEB) == 2
    (line,) = await periodic_fees(client, partner, card.id)
    assert (line["period"], line["status"], line["reason"], line["ledger_transfer_id"]) == (
        "2030-01",
        "DUE",
        "INSUFFICIENT_FUNDS",
        None,
    )
    assert await events_of(session, line["id"]) == [], "nothing happened yet"
    fee = await session.get(Fee, line["id"])
    assert fee is not None
    # Retried daily, for three days from the run that found the balance short.
    assert (fee.next_attempt_at, fee.retry_until) == (
        FEB + timedelta(days=1),
        FEB + timedelta(days=3),
    )
    assert await run(sessionmaker, FEB) == 0, "a due fee is not made twice"
    assert await run(sessionmaker, FEB + timedelta(days=1)) == 0, "nor later in the window"

    assert await service.retry_due(session, now=FEB + timedelta(hours=23)) == 0, "not yet"
    await session.commit()
    await reload(client, partner, card.balance_id, 1_000)

    async def retry(now: datetime) -> int:
        async with sessionmaker() as retrying:
            retried = await service.retry_due(retrying, now=now)
            await retrying.commit()
        return retried

    # The reload paid the due fee at once; the day's retry finds only the other card's.
    (line,) = await periodic_fees(client, partner, card.id)
    assert (line["status"], line["reason"]) == ("CHARGED", None)
    assert [kind for kind, _ in await events_of(session, line["id"])] == ["fee.charged"]
    assert await available(client, partner, card.balance_id) == 1_100 - 499
    assert await retry(FEB + timedelta(days=1)) == 1
    (line,) = await periodic_fees(client, partner, card.id)
    assert line["status"] == "CHARGED"
    assert await available(client, partner, card.balance_id) == 1_100 - 499

    # The other balance never had the money: tried on each of the three days; at the end of
    # the window, the fee is skipped.
    (short,) = await periodic_fees(client, partner, other.id)
    assert short["status"] == "DUE"
    assert await retry(FEB + timedelta(days=1, hours=12)) == 0
    assert await retry(FEB + timedelta(days=2)) == 1
    (short,) = await periodic_fees(client, partner, other.id)
    assert short["status"] == "DUE"
    assert await retry(FEB + timedelta(days=3)) == 1
    (short,) = await periodic_fees(client, partner, other.id)
    assert (short["status"], short["reason"]) == ("SKIPPED", "INSUFFICIENT_FUNDS after 4 attempts")
    assert await retry(FEB + timedelta(days=30)) == 0
    assert await available(client, partner, other.balance_id) == 100
    assert await verify(session) == []


async def test_allow_negative_up_to_the_programs_limit(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The card is made in January 2030 (an UPDATE): at `FEB`, January is its only period."""
    partner, base, (card,) = await world(app, 100)
    await move_card(session, card.id, MID_JANUARY)
    await set_policy(
        client,
        base.admin.token,
        fee_shortfall_policy="ALLOW_NEGATIVE",
        fee_overdraft_limits={"EUR": 500},
    )
    await set_schedule(client, base.admin.token, [monthly(499)])
    assert await run(sessionmaker, FEB) == 1
    assert await charged_periods(session, card.id) == ["2030-01"]
    assert await available(client, partner, card.balance_id) == -399
    assert await run(sessionmaker, MAR) == 1  # -898 would pass the limit of -500
    lines = await periodic_fees(client, partner, card.id)
    assert [(f["period"], f["status"], f["reason"]) for f in lines] == [
        ("2030-01", "CHARGED", None),
        ("2030-02", "SKIPPED", "OVERDRAFT_LIMIT_REACHED"),
    ]
    assert await available(client, partner, card.balance_id) == -399
    assert await verify(session) == []


# -- batches ---------------------------------------------------------------------------------------


async def test_limit_is_respected_and_the_next_call_continues(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The cards are made at noon on 30 January 2030 (an UPDATE): at `FEB` their periods are
    30 and 31 January and the month of January."""
    partner, base, cards = await world(app, 1_000, 1_000, 1_000)
    await move_cards(session, partner.program_id, utc(2030, 1, 30, 12))
    await set_schedule(
        client,
        base.admin.token,
        [monthly(100), {"type": "CARD_PERIODIC", "period": "DAILY", "prices": eur(1)}],
    )

    async def periods() -> Counter[str]:
        return Counter(await session.scalars(select(Fee.period)))

    # Nine lines are due (three periods, three cards): 4, 1, 4, then none. The oldest period
    # goes first: a batch does not leave the day about to leave the window for later.
    assert await run(sessionmaker, FEB, limit=4) == 4
    assert await periods() == {"2030-01-30": 3, "2030-01-31": 1}
    assert await run(sessionmaker, FEB, limit=1) == 1
    assert await periods() == {"2030-01-30": 3, "2030-01-31": 2}
    assert await run(sessionmaker, FEB, limit=4) == 4
    assert await run(sessionmaker, FEB, limit=4) == 0
    rows = (await session.execute(select(Fee.card_id, Fee.period, Fee.status))).all()
    assert sorted(rows) == sorted(
        (c.id, period, "CHARGED")
        for c in cards
        for period in ("2030-01", "2030-01-30", "2030-01-31")
    )
    assert [await available(client, partner, c.balance_id) for c in cards] == [898, 898, 898]


async def test_a_full_batch_queues_the_next_one(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The job (`fees.charge_periodic`, as the worker runs it: real time) charges a batch, and a
    full batch queues the next one, until every card is charged. The cards and the schedule are
    moved back to the start of yesterday (UTC) with an UPDATE: yesterday is their only period
    in the window."""
    partner, base, cards = await world(app, 1_000, 1_000, 1_000, 1_000, 1_000)
    await set_schedule(
        client, base.admin.token, [{"type": "CARD_PERIODIC", "period": "DAILY", "prices": eur(10)}]
    )
    before, yesterday, _ = last_period("DAILY", datetime.now(UTC), "UTC")
    await session.execute(
        update(Card).where(Card.program_id == partner.program_id).values(created_at=yesterday)
    )
    await session.execute(
        update(FeeSchedule)
        .where(FeeSchedule.program_id == partner.program_id)
        .values(effective_from=yesterday)
    )
    await enqueue(session, CHARGE_PERIODIC, {"limit": 2})
    await session.commit()

    queue = JobQueue(sessionmaker, JOBS)
    while await queue.run_one():
        pass
    runs = (
        await session.execute(
            select(Job.status, Job.payload).where(Job.kind == "fees.charge_periodic")
        )
    ).all()
    counts = await _per_card_and_period(session)
    assert {card for card, _ in counts} == {c.id for c in cards}
    assert before in {period for _, period in counts}
    assert set(counts.values()) == {(1, 1)}
    if last_period("DAILY", datetime.now(UTC), "UTC")[0] == before:  # not across midnight
        assert {period for _, period in counts} == {before}
        assert [tuple(run) for run in runs] == [("done", {"limit": 2})] * 3, "2 + 2 + 1"
        assert [await available(client, partner, c.balance_id) for c in cards] == [990] * 5


# -- across processes ------------------------------------------------------------------------------


def _worker_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARDCORE_", "PROMETHEUS_"))}
    assert settings.database_url
    assert settings.master_keys
    env.update(
        CARDCORE_DATABASE_URL=settings.database_url,
        CARDCORE_MASTER_KEYS=settings.master_keys,
        CARDCORE_CVK_A=settings.cvk_a or "",
        CARDCORE_CVK_B=settings.cvk_b or "",
        CARDCORE_DATA_DIR=str(data_dir),
        CARDCORE_LOG_LEVEL="WARNING",
    )
    return env


async def _worker_once(settings: Settings, data_dir: Path) -> None:
    """`cardcore worker --once`: schedule the periodic jobs that are due, do them, exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cardcore",
        "worker",
        "--once",
        env=_worker_env(settings, data_dir),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()[-3000:]


async def _per_card_and_period(session: AsyncSession) -> dict[tuple[str, str], tuple[int, int]]:
    """For each (card, period): how many fee lines, and how many fee transfers in the ledger."""
    lines = (
        await session.execute(
            select(Fee.card_id, Fee.period, func.count())
            .where(Fee.type == "CARD_PERIODIC")
            .group_by(Fee.card_id, Fee.period)
        )
    ).all()
    # details->>'fee_id' is the fee's public id (text), fees.id a uuid column: matched here.
    period_of = {
        fee_id: (card, period)
        for fee_id, card, period in (
            await session.execute(
                select(Fee.id, Fee.card_id, Fee.period).where(Fee.type == "CARD_PERIODIC")
            )
        ).all()
    }
    moved = Counter(
        period_of[fee_id]
        for fee_id in await session.scalars(
            select(LedgerTransfer.details["fee_id"].astext).where(LedgerTransfer.code == "fee")
        )
        if fee_id in period_of
    )
    return {(card, period): (n, moved.get((card, period), 0)) for card, period, n in lines}


@pytest.mark.slow  # `cardcore worker --once` processes
async def test_once_across_worker_restarts_and_concurrent_runs(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    """Committed data. Two `cardcore worker --once` processes one after the other (real time:
    the cards are three days old, so the last three days are their periods), then two sessions
    running the job at the same time (a fixed `now`, with a week of periods in its window):
    one line and one ledger transfer per card and period, whatever happens."""
    sessionmaker = create_sessionmaker(engine)
    async with (
        AsyncClient(transport=ASGITransport(app=committed_app), base_url="http://t") as client,
        sessionmaker() as session,
    ):
        partner, base, cards = await world(committed_app, 2_000, 2_000, 2_000, name="Restart")
        await set_schedule(
            client,
            base.admin.token,
            [{"type": "CARD_PERIODIC", "period": "DAILY", "prices": eur(100)}],
        )
        # The job charges the days that have ended (UTC); the API stamps cards and schedules
        # with the real time, so both are moved three days back with an UPDATE: the day they
        # were made, and the two after it, are due.
        three_days_ago = datetime.now(UTC) - timedelta(days=3)
        await session.execute(
            update(Card)
            .where(Card.program_id == partner.program_id)
            .values(created_at=three_days_ago)
        )
        await session.execute(
            update(FeeSchedule)
            .where(FeeSchedule.program_id == partner.program_id)
            .values(effective_from=three_days_ago)
        )
        await session.commit()
        card_ids = {c.id for c in cards}

        def due_days(now: datetime) -> set[str]:
            """The days in the job's window at `now` that ended after the cards were made."""
            return {
                label
                for label, _, end in recent_periods("DAILY", now, "UTC")
                if end > three_days_ago
            }

        # If the test runs across midnight (UTC), one more day may be due by the end.
        first_due = due_days(three_days_ago + timedelta(days=3))
        assert len(first_due) == 3
        periods = set(first_due)
        await _worker_once(settings, tmp_path)
        for restart in range(2):
            job = await session.scalar(select(Job).where(Job.kind == "fees.charge_periodic"))
            assert job is not None, "the worker scheduled the job"
            assert job.status == "done", job.last_error
            periods |= due_days(datetime.now(UTC))
            counts = await _per_card_and_period(session)
            assert {card for card, _ in counts} == card_ids
            assert first_due <= {period for _, period in counts} <= periods
            assert set(counts.values()) == {(1, 1)}, counts
            if restart == 0:
                # The next run of the job (as the next 10-minute slot would bring) in a new
                # process: it must find every card already charged.
                await session.execute(delete(Job).where(Job.kind == "fees.charge_periodic"))
                await session.commit()
                await _worker_once(settings, tmp_path)
        charged_by_workers = sum(n for n, _ in counts.values())
        session.expire_all()

        # Two runs at once. The first is left open while the second starts: the second waits
        # on the first's uncommitted fee lines, then finds them and charges nothing. At `FEB`
        # the window is 25 to 31 January: seven days for each of the three cards.
        async with sessionmaker() as first, sessionmaker() as second:
            assert await charge_periodic(first, now=FEB) == 3 * 7
            racing = asyncio.create_task(charge_periodic(second, now=FEB))
            await asyncio.sleep(0.5)
            assert not racing.done(), "the second run waits for the first's fee lines"
            await first.commit()
            assert await racing == 0
            await second.commit()
        # Two started together, for the next day.
        async with sessionmaker() as one, sessionmaker() as two:

            async def run_in(s: AsyncSession) -> int:
                made = await charge_periodic(s, now=FEB + timedelta(days=1))
                await s.commit()
                return made

            # 1 February is new; 26 to 31 January, still in the window, are already charged.
            assert sum(await asyncio.gather(run_in(one), run_in(two))) == 3

        counts = await _per_card_and_period(session)
        assert set(counts.values()) == {(1, 1)}, counts
        assert {p for _, p in counts} - periods == {
            *(f"2030-01-{day}" for day in range(25, 32)),
            "2030-02-01",
        }
        assert len(counts) == 3 * 8 + charged_by_workers
        for card in cards:
            expected = 2_000 - 100 * sum(1 for (c, _) in counts if c == card.id)
            assert await available(client, partner, card.balance_id) == expected
        assert await verify(session) == []
