"""a card's spend as one row per channel, the periods as columns

Revision ID: 2026_12_03_card_spend
Revises: 2026_12_03_generic_plans
Create Date: 2026-12-03 16:30:00+00:00

`card_spend_counters` had a row per card, channel, period and period start: an approval added to
ten or fifteen of them (every period of ALL, of its channel and of its entry mode) and the
table grew by as many rows per card every day. `card_spend` has a row per card and channel with
the current day's, week's, month's and year's amount and count (each with the moment it began)
and the lifetime's: an approval updates two or three rows. `card_spend_add` and `card_spent` keep
their arguments and results; the arrays `card_spend_add` is given name each channel once and
each period once with its start, where they named every channel once per period.

Each channel's current periods come over (the row with the latest start of each period); the
older rows were never read again and are left behind. Down again, the current periods become rows
of the old table.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2026_12_03_card_spend"
down_revision: str | None = "2026_12_03_generic_plans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERIODS = ("day", "week", "month", "year")
FUNCTIONS = (
    "card_spend_add(uuid, varchar[], varchar[], timestamptz[], bigint)",
    "card_spent(uuid, varchar[], timestamptz[])",
)

SPEND_ADD = """
CREATE FUNCTION card_spend_add(
    p_card uuid, p_channels varchar[], p_periods varchar[], p_starts timestamptz[], p_amount bigint
) RETURNS void
LANGUAGE sql AS $$
    -- A row per channel named (each once), every period with the start p_starts gives it in
    -- p_periods. A period whose start is not the row's is a new one: it starts afresh from this
    -- transaction, whichever way the start moved (a program's new time zone can move it back),
    -- as a new period's row of the old table did.
    INSERT INTO card_spend AS c (
        card_id, channel,
        day_start, day_amount, day_count, week_start, week_amount, week_count,
        month_start, month_amount, month_count, year_start, year_amount, year_count,
        lifetime_amount, lifetime_count)
    SELECT p_card, k.channel,
           p_starts[array_position(p_periods, 'day')], p_amount, 1,
           p_starts[array_position(p_periods, 'week')], p_amount, 1,
           p_starts[array_position(p_periods, 'month')], p_amount, 1,
           p_starts[array_position(p_periods, 'year')], p_amount, 1,
           p_amount, 1
    FROM unnest(p_channels) AS k(channel)
    ON CONFLICT (card_id, channel) DO UPDATE SET
        day_amount = excluded.day_amount
            + CASE WHEN c.day_start = excluded.day_start THEN c.day_amount ELSE 0 END,
        day_count = 1 + CASE WHEN c.day_start = excluded.day_start THEN c.day_count ELSE 0 END,
        day_start = excluded.day_start,
        week_amount = excluded.week_amount
            + CASE WHEN c.week_start = excluded.week_start THEN c.week_amount ELSE 0 END,
        week_count = 1 + CASE WHEN c.week_start = excluded.week_start THEN c.week_count ELSE 0 END,
        week_start = excluded.week_start,
        month_amount = excluded.month_amount
            + CASE WHEN c.month_start = excluded.month_start THEN c.month_amount ELSE 0 END,
        month_count = 1
            + CASE WHEN c.month_start = excluded.month_start THEN c.month_count ELSE 0 END,
        month_start = excluded.month_start,
        year_amount = excluded.year_amount
            + CASE WHEN c.year_start = excluded.year_start THEN c.year_amount ELSE 0 END,
        year_count = 1 + CASE WHEN c.year_start = excluded.year_start THEN c.year_count ELSE 0 END,
        year_start = excluded.year_start,
        lifetime_amount = c.lifetime_amount + excluded.lifetime_amount,
        lifetime_count = c.lifetime_count + 1
$$
"""

SPENT = """
CREATE FUNCTION card_spent(p_card uuid, p_periods varchar[], p_starts timestamptz[])
RETURNS TABLE (channel varchar, period varchar, amount bigint, count integer)
LANGUAGE sql STABLE AS $$
    -- The card's spend in the periods that began at p_starts (one start per period; the
    -- lifetime has none), per channel: a row's period counts while its start is the one asked.
    SELECT s.channel, w.period, p.amount, p.count
    FROM card_spend s
    CROSS JOIN LATERAL (VALUES
        ('day', s.day_start, s.day_amount, s.day_count),
        ('week', s.week_start, s.week_amount, s.week_count),
        ('month', s.month_start, s.month_amount, s.month_count),
        ('year', s.year_start, s.year_amount, s.year_count),
        ('lifetime', NULL, s.lifetime_amount, s.lifetime_count)
    ) AS p(period, period_start, amount, count)
    JOIN unnest(p_periods, p_starts) AS w(period, period_start)
      ON w.period = p.period AND (p.period = 'lifetime' OR w.period_start = p.period_start)
    WHERE s.card_id = p_card
$$
"""

# Each channel's current periods: the row with the latest start of each.
CURRENT_PERIODS = """
INSERT INTO card_spend (
    card_id, channel,
    day_start, day_amount, day_count, week_start, week_amount, week_count,
    month_start, month_amount, month_count, year_start, year_amount, year_count,
    lifetime_amount, lifetime_count)
SELECT card_id, channel,
       max(period_start) FILTER (WHERE period = 'day'),
       coalesce(max(amount) FILTER (WHERE period = 'day'), 0),
       coalesce(max(count) FILTER (WHERE period = 'day'), 0),
       max(period_start) FILTER (WHERE period = 'week'),
       coalesce(max(amount) FILTER (WHERE period = 'week'), 0),
       coalesce(max(count) FILTER (WHERE period = 'week'), 0),
       max(period_start) FILTER (WHERE period = 'month'),
       coalesce(max(amount) FILTER (WHERE period = 'month'), 0),
       coalesce(max(count) FILTER (WHERE period = 'month'), 0),
       max(period_start) FILTER (WHERE period = 'year'),
       coalesce(max(amount) FILTER (WHERE period = 'year'), 0),
       coalesce(max(count) FILTER (WHERE period = 'year'), 0),
       coalesce(max(amount) FILTER (WHERE period = 'lifetime'), 0),
       coalesce(max(count) FILTER (WHERE period = 'lifetime'), 0)
FROM (SELECT DISTINCT ON (card_id, channel, period) *
      FROM card_spend_counters
      ORDER BY card_id, channel, period, period_start DESC) latest
GROUP BY card_id, channel
"""

# Down: a row of the old table per period begun (the lifetime's began in 1970, as
# cards/controls.LIFETIME_START).
PERIOD_ROWS = """
INSERT INTO card_spend_counters (card_id, channel, period, period_start, amount, count)
SELECT s.card_id, s.channel, p.period, p.period_start, p.amount, p.count
FROM card_spend s
CROSS JOIN LATERAL (VALUES
    ('day', s.day_start, s.day_amount, s.day_count),
    ('week', s.week_start, s.week_amount, s.week_count),
    ('month', s.month_start, s.month_amount, s.month_count),
    ('year', s.year_start, s.year_amount, s.year_count),
    ('lifetime', timestamptz '1970-01-01 00:00:00+00', s.lifetime_amount, s.lifetime_count)
) AS p(period, period_start, amount, count)
WHERE p.period_start IS NOT NULL
"""


def upgrade() -> None:
    op.create_table(
        "card_spend",
        sa.Column("card_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        *(
            column
            for period in PERIODS
            for column in (
                sa.Column(f"{period}_start", sa.DateTime(timezone=True), nullable=True),
                sa.Column(f"{period}_amount", sa.BigInteger(), server_default="0", nullable=False),
                sa.Column(f"{period}_count", sa.Integer(), server_default="0", nullable=False),
            )
        ),
        sa.Column("lifetime_amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("lifetime_count", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_spend_card_id_cards")
        ),
        sa.PrimaryKeyConstraint("card_id", "channel", name=op.f("pk_card_spend")),
    )
    op.execute(CURRENT_PERIODS)
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION {signature}")
    op.execute(SPEND_ADD)
    op.execute(SPENT)
    op.drop_table("card_spend_counters")


def downgrade() -> None:
    op.create_table(
        "card_spend_counters",
        sa.Column("card_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("count", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_spend_counters_card_id_cards")
        ),
        sa.PrimaryKeyConstraint(
            "card_id", "channel", "period", "period_start", name=op.f("pk_card_spend_counters")
        ),
    )
    op.execute(PERIOD_ROWS)
    # The functions as the authorization's functions migration made them.
    path = Path(__file__).with_name("2026_12_03_authorization_functions.py")
    spec = importlib.util.spec_from_file_location("authorization_functions", path)
    assert spec is not None
    assert spec.loader is not None
    before = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(before)
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION {signature}")
    for statement in before.CARD_SPEND.split(";\n\n"):
        op.execute(statement)
    op.drop_table("card_spend")
