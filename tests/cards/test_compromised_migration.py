"""The migration that brings in compromised numbers and one open report per card cleans up what
the old rules could leave in a database: two open reports on one card, numbers reported or locked
as stolen but not listed, and a card brought back to life with a stolen number."""

import asyncio
from typing import Any

import asyncpg
from sqlalchemy.engine import URL
from ulid import ULID

from cardcore.cli import run_migrations
from cardcore.config import Settings
from cardcore.models.ids import to_uuid
from tests.cards.helpers import cards_at_head, down_before
from tests.harness import asyncpg_dsn

REVISION = "2026_12_03_i16_reports"


def _uuid(prefix: str, public_id: str) -> Any:
    found = to_uuid(prefix, public_id)
    assert found is not None
    return found


async def test_upgrading_cleans_up_what_the_old_rules_left(
    scratch_url: URL, settings: Settings
) -> None:
    await asyncio.to_thread(run_migrations, scratch_url)
    program_id, (two_reports, locked_stolen, stolen, replacement, reborn) = await cards_at_head(
        scratch_url, settings, 5
    )
    await down_before(scratch_url, REVISION)

    dsn, extra = asyncpg_dsn(scratch_url)
    db = await asyncpg.connect(dsn, **extra)
    try:
        program, card = (
            _uuid("prg", program_id),
            {
                name: _uuid("card", value)
                for name, value in (
                    ("two_reports", two_reports),
                    ("locked_stolen", locked_stolen),
                    ("stolen", stolen),
                    ("replacement", replacement),
                    ("reborn", reborn),
                )
            },
        )

        async def report(card_id: Any, reason: str, status: str) -> Any:
            report_id = ULID().to_uuid()
            await db.execute(
                "INSERT INTO card_reports (id, program_id, card_id, reason, status, reported_by,"
                " prior_status) VALUES ($1, $2, $3, $4, $5, 'partner', 'ACTIVE')",
                report_id,
                program,
                card_id,
                reason,
                status,
            )
            return report_id

        # What the old code allowed: a DAMAGED report, then a STOLEN one, both open.
        damaged = await report(card["two_reports"], "DAMAGED", "OPEN")
        stolen_report = await report(card["two_reports"], "STOLEN", "OPEN")
        # A card the network locked as stolen.
        await db.execute(
            "UPDATE cards SET status = 'LOCKED', lock_reason = 2 WHERE id = $1",
            card["locked_stolen"],
        )
        # A stolen card replaced with a new number, whose number an older same-number
        # replacement brought back on an ACTIVE card (the reborn card).
        await report(card["stolen"], "STOLEN", "REPLACED")
        await db.execute(
            "UPDATE cards SET status = 'LOCKED', lock_reason = 8, replaced_by = $2 WHERE id = $1",
            card["stolen"],
            card["replacement"],
        )
        await db.execute(
            "UPDATE cards SET pan_hash = (SELECT pan_hash FROM cards WHERE id = $2) WHERE id = $1",
            card["reborn"],
            card["stolen"],
        )

        await asyncio.to_thread(run_migrations, scratch_url)

        reports = {
            row["id"]: (row["status"], row["superseded_by"])
            for row in await db.fetch(
                "SELECT id, status, superseded_by FROM card_reports WHERE card_id = $1",
                card["two_reports"],
            )
        }
        assert reports == {damaged: ("SUPERSEDED", stolen_report), stolen_report: ("OPEN", None)}
        listed = await db.fetchval(
            "SELECT count(*) FROM compromised_pans p JOIN cards c"
            " ON c.network = p.network AND c.pan_hash = p.pan_hash WHERE c.id = ANY($1)",
            [card["two_reports"], card["locked_stolen"], card["stolen"]],
        )
        assert listed == 3
        states = {
            row["id"]: (row["status"], row["lock_reason"])
            for row in await db.fetch("SELECT id, status, lock_reason FROM cards")
        }
        assert states[card["reborn"]] == ("LOCKED", 2), "the reborn card is stopped"
        assert states[card["two_reports"]] == ("LOCKED", 2)
        assert states[card["replacement"]] == ("ACTIVE", None), "a new number is left alone"
        events = await db.fetch(
            "SELECT object_id, data FROM events WHERE type = 'card.status_changed'"
            " AND data->>'actor' = 'system' ORDER BY id"
        )
        assert sorted(row["object_id"] for row in events) == sorted([reborn, two_reports])
        assert all('"lock_reason": 2' in row["data"] for row in events)
    finally:
        await db.close()
