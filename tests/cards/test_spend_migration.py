"""The migration to one spend row per card and channel keeps what limits are checked against:
each channel's current periods come over, older periods stay behind, and adding to them and
reading them back through `card_spend_add` and `card_spent` behaves as with the old rows.
Down again, the current periods become rows of the old table."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from alembic import command
from sqlalchemy.engine import URL

from cardcore.cards.controls import LIFETIME_START, PERIODS
from cardcore.cli import alembic_config, run_migrations
from cardcore.config import Settings
from cardcore.models.ids import to_uuid
from tests.cards.helpers import cards_at_head, down_before
from tests.harness import asyncpg_dsn

REVISION = "2026_12_03_card_spend"
TODAY = datetime(2026, 12, 3, tzinfo=UTC)
YESTERDAY = TODAY - timedelta(days=1)
WEEK = datetime(2026, 11, 30, tzinfo=UTC)
MONTH = datetime(2026, 12, 1, tzinfo=UTC)
YEAR = datetime(2026, 1, 1, tzinfo=UTC)
STARTS = {"day": TODAY, "week": WEEK, "month": MONTH, "year": YEAR, "lifetime": LIFETIME_START}


async def _spent(db: asyncpg.Connection, card: Any, starts: dict[str, datetime]) -> set[tuple]:
    rows = await db.fetch(
        "SELECT channel, period, amount, count FROM card_spent($1, $2, $3)",
        card,
        list(starts),
        list(starts.values()),
    )
    return {tuple(row) for row in rows}


async def _add(
    db: asyncpg.Connection, card: Any, channels: list[str], starts: dict[str, datetime], amount: int
) -> None:
    """As `controls.spend_keys` names them: each channel once, each period with its start."""
    await db.execute(
        "SELECT card_spend_add($1, $2, $3, $4, $5)",
        card,
        channels,
        list(starts),
        list(starts.values()),
        amount,
    )


async def test_the_current_periods_come_over_and_go_back(
    scratch_url: URL, settings: Settings
) -> None:
    assert tuple(STARTS) == PERIODS, "the test's periods are the controls' periods"
    await asyncio.to_thread(run_migrations, scratch_url)
    _, (card_id,) = await cards_at_head(scratch_url, settings, 1)
    card = to_uuid("card", card_id)
    before = await down_before(scratch_url, REVISION)
    config = alembic_config(scratch_url)

    dsn, extra = asyncpg_dsn(scratch_url)
    db = await asyncpg.connect(dsn, **extra)
    try:
        # What the old table held: yesterday's and today's rows for ALL, every period's current
        # row, and POS only for today and the lifetime.
        old = [
            ("ALL", "day", YESTERDAY, 900, 4),
            ("ALL", "day", TODAY, 300, 1),
            ("ALL", "week", WEEK, 1200, 5),
            ("ALL", "month", MONTH, 1200, 5),
            ("ALL", "year", YEAR, 4000, 9),
            ("ALL", "lifetime", LIFETIME_START, 5000, 10),
            ("POS", "day", TODAY, 300, 1),
            ("POS", "lifetime", LIFETIME_START, 300, 1),
        ]
        await db.executemany(
            "INSERT INTO card_spend_counters (card_id, channel, period, period_start, amount,"
            " count) VALUES ($1, $2, $3, $4, $5, $6)",
            [(card, *row) for row in old],
        )
        read_before = await _spent(db, card, STARTS)

        await asyncio.to_thread(command.upgrade, config, REVISION)
        assert (
            await _spent(db, card, STARTS)
            == read_before
            == {
                ("ALL", "day", 300, 1),
                ("ALL", "week", 1200, 5),
                ("ALL", "month", 1200, 5),
                ("ALL", "year", 4000, 9),
                ("ALL", "lifetime", 5000, 10),
                ("POS", "day", 300, 1),
                ("POS", "lifetime", 300, 1),
            }
        )
        # Yesterday is no longer a current period.
        assert await _spent(db, card, {"day": YESTERDAY}) == set()

        # Today again, on ALL and POS: added to what is there; POS's week starts now.
        await _add(db, card, ["ALL", "POS"], STARTS, 100)
        spent = await _spent(db, card, STARTS)
        assert {("ALL", "day", 400, 2), ("ALL", "lifetime", 5100, 11)} <= spent
        assert {("POS", "day", 400, 2), ("POS", "week", 100, 1)} <= spent
        # Tomorrow: the day starts afresh, the week goes on.
        tomorrow = {**STARTS, "day": TODAY + timedelta(days=1)}
        await _add(db, card, ["ALL"], tomorrow, 50)
        spent = await _spent(db, card, tomorrow)
        assert {("ALL", "day", 50, 1), ("ALL", "week", 1350, 7)} <= spent
        assert ("ALL", "lifetime", 5150, 12) in spent
        assert await db.fetchval("SELECT count(*) FROM card_spend") == 2
        spent = await _spent(db, card, tomorrow)

        await asyncio.to_thread(command.downgrade, config, before)
        rows = {
            tuple(row)
            for row in await db.fetch(
                "SELECT channel, period, period_start, amount, count FROM card_spend_counters"
            )
        }
        assert rows == {
            ("ALL", "day", tomorrow["day"], 50, 1),
            ("ALL", "week", WEEK, 1350, 7),
            ("ALL", "month", MONTH, 1350, 7),
            ("ALL", "year", YEAR, 4150, 11),
            ("ALL", "lifetime", LIFETIME_START, 5150, 12),
            ("POS", "day", TODAY, 400, 2),
            ("POS", "week", WEEK, 100, 1),
            ("POS", "month", MONTH, 100, 1),
            ("POS", "year", YEAR, 100, 1),
            ("POS", "lifetime", LIFETIME_START, 400, 2),
        }
        # The old functions read the old rows as the new ones read the new.
        assert await _spent(db, card, tomorrow) == spent
    finally:
        await db.close()
        await asyncio.to_thread(run_migrations, scratch_url)
