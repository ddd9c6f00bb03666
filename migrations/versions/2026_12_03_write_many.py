"""authorizations read and written many at a time: card_authorization_{context,write}_many

Revision ID: 2026_12_03_write_many
Revises: 2026_12_03_card_spend
Create Date: 2026-12-03 18:30:00+00:00

An authorization's write is one statement, but a transaction of its own: its commit, its round
trip, its snapshot and its statement's start-up cost about a third of the database's time per
authorization. The lean path now hands the writes of the authorizations that arrive together to
`card_authorization_write_many`, which makes each one's `card_authorization_write` call in one
transaction: each call still writes all of itself or nothing (a refused or stale call undoes
its own changes), and they commit together. Their reads (without the card's lock, each a
transaction of its own) go together the same way, to `card_authorization_context_many`.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "2026_12_03_write_many"
down_revision: str | None = "2026_12_03_card_spend"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CALL = """
CREATE TYPE card_authorization_call AS (
    transaction jsonb,
    message jsonb,
    event jsonb,
    transfers jsonb,
    fees jsonb,
    accounts uuid[],
    debits_pending bigint[],
    debits_posted bigint[],
    credits_pending bigint[],
    credits_posted bigint[],
    allowances bigint[],
    user_account uuid,
    deposit_account uuid,
    spend_channels varchar[],
    spend_periods varchar[],
    spend_starts timestamptz[],
    spend_amount bigint,
    card_version bigint,
    periods varchar[],
    starts timestamptz[],
    spent_count bigint
)
"""

ASK = """
CREATE TYPE card_authorization_ask AS (
    key uuid,
    program uuid,
    card uuid,
    pan_hash bytea,
    network_key varchar,
    currency varchar,
    periods varchar[],
    starts timestamptz[],
    at timestamptz,
    touch_after interval
)
"""

CONTEXT_MANY = """
CREATE FUNCTION card_authorization_context_many(p_asks card_authorization_ask[])
RETURNS TABLE (
    n integer,
    key_ok boolean,
    card cards,
    card_version bigint,
    timezone varchar,
    home_country varchar,
    control_maxima jsonb,
    fx_markup_bps integer,
    balance_currency varchar,
    user_account uuid,
    available bigint,
    deposit_account uuid,
    deposit_balance uuid,
    deposit_threshold bigint,
    previous jsonb,
    previous_amount bigint,
    previous_card uuid,
    spent json,
    fee_versions json,
    fx_rate numeric
)
LANGUAGE plpgsql AS $$
-- `card_authorization_context` without the card's lock for each ask, in order: a row per ask,
-- n its place in p_asks.
DECLARE
    v_ask card_authorization_ask;
    v_n integer := 0;
BEGIN
    FOREACH v_ask IN ARRAY p_asks LOOP
        v_n := v_n + 1;
        RETURN QUERY
        SELECT v_n, c.*
        FROM card_authorization_context(
            v_ask.key, v_ask.program, v_ask.card, v_ask.pan_hash, v_ask.network_key,
            v_ask.currency, v_ask.periods, v_ask.starts, v_ask.at, v_ask.touch_after, false) c;
    END LOOP;
END
$$
"""

WRITE_MANY = """
CREATE FUNCTION card_authorization_write_many(p_calls card_authorization_call[])
RETURNS TABLE (
    n integer, stale boolean, refused_account uuid, available bigint, deposit_available bigint
)
LANGUAGE plpgsql AS $$
-- `card_authorization_write` for each call, in order, in the caller's one transaction: a row
-- per call, n its place in p_calls.
--
-- Every row a call locks is locked first, all calls' at once and in one order: the cards by id,
-- then the ruled accounts by id. Taken call by call, two transactions each writing several
-- calls could each hold what the other's next call waits for (one call's card, the other's
-- account), and wait in a circle; a single call locks its card, then its accounts by id, so it
-- never waits on a batch in a circle either.
DECLARE
    v_call card_authorization_call;
    v_n integer := 0;
BEGIN
    PERFORM FROM cards c
    WHERE c.id IN (SELECT (x.transaction ->> 'card_id')::uuid FROM unnest(p_calls) x)
    ORDER BY c.id FOR UPDATE;
    PERFORM FROM ledger_accounts a
    WHERE a.id IN (SELECT unnest(x.accounts) FROM unnest(p_calls) x)
      AND (a.debits_must_not_exceed_credits OR a.credits_must_not_exceed_debits)
    ORDER BY a.id FOR UPDATE;
    FOREACH v_call IN ARRAY p_calls LOOP
        v_n := v_n + 1;
        RETURN QUERY
        SELECT v_n, w.stale, w.refused_account, w.available, w.deposit_available
        FROM card_authorization_write(
            v_call.transaction, v_call.message, v_call.event, v_call.transfers, v_call.fees,
            v_call.accounts, v_call.debits_pending, v_call.debits_posted,
            v_call.credits_pending, v_call.credits_posted, v_call.allowances,
            v_call.user_account, v_call.deposit_account, v_call.spend_channels,
            v_call.spend_periods, v_call.spend_starts, v_call.spend_amount,
            v_call.card_version, v_call.periods, v_call.starts, v_call.spent_count) w;
    END LOOP;
END
$$
"""


ENTRY_POINTS = (
    "card_authorization_context_many(card_authorization_ask[])",
    "card_authorization_write_many(card_authorization_call[])",
)


def plan_once(signatures: Sequence[str]) -> None:
    """As for the other entry points (2026_12_03_generic_plans): every statement looks up by
    key."""
    for signature in signatures:
        op.execute(f"ALTER FUNCTION {signature} SET plan_cache_mode = force_generic_plan")
        op.execute(f"ALTER FUNCTION {signature} SET enable_seqscan = off")


def drop(signatures: Sequence[str], types: Sequence[str]) -> None:
    for signature in signatures:
        op.execute(f"DROP FUNCTION {signature}")
    for name in types:
        op.execute(f"DROP TYPE {name}")


def upgrade() -> None:
    for statement in (ASK, CONTEXT_MANY, CALL, WRITE_MANY):
        op.execute(statement)
    plan_once(ENTRY_POINTS)


def downgrade() -> None:
    drop(ENTRY_POINTS, ("card_authorization_call", "card_authorization_ask"))
