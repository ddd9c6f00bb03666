"""follow-up messages read and written many at a time: card_follow_up_{context,write}_many

Revision ID: 2026_12_03_follow_ups_many
Revises: 2026_12_03_write_many
Create Date: 2026-12-03 20:10:00+00:00

As for authorizations (2026_12_03_write_many): the clearings, reversals and incremental
authorizations a server process has in flight are read, and written, in one transaction, each
message's `card_follow_up_context` (unlocked) or `card_follow_up_write` call in turn.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import op

revision: str = "2026_12_03_follow_ups_many"
down_revision: str | None = "2026_12_03_write_many"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ASK = """
CREATE TYPE card_follow_up_ask AS (
    key uuid,
    program uuid,
    transaction uuid,
    network_key varchar,
    refunds boolean,
    touch_after interval
)
"""

CONTEXT_MANY = """
CREATE FUNCTION card_follow_up_context_many(p_asks card_follow_up_ask[])
RETURNS TABLE (
    n integer,
    key_ok boolean,
    transaction card_transactions,
    transaction_version bigint,
    previous jsonb,
    previous_amount bigint,
    previous_transaction uuid,
    user_account uuid,
    available bigint,
    clearing_tolerances jsonb,
    holds json,
    held_fees json,
    refunded bigint
)
LANGUAGE plpgsql AS $$
-- `card_follow_up_context` without the authorization's lock for each ask, in order: a row per
-- ask, n its place in p_asks.
DECLARE
    v_ask card_follow_up_ask;
    v_n integer := 0;
BEGIN
    FOREACH v_ask IN ARRAY p_asks LOOP
        v_n := v_n + 1;
        RETURN QUERY
        SELECT v_n, c.*
        FROM card_follow_up_context(
            v_ask.key, v_ask.program, v_ask.transaction, v_ask.network_key, v_ask.refunds,
            v_ask.touch_after, false) c;
    END LOOP;
END
$$
"""

CALL = """
CREATE TYPE card_follow_up_call AS (
    transaction uuid,
    changes jsonb,
    fees jsonb,
    message jsonb,
    events jsonb,
    transfers jsonb,
    accounts uuid[],
    debits_pending bigint[],
    debits_posted bigint[],
    credits_pending bigint[],
    credits_posted bigint[],
    allowances bigint[],
    currency varchar,
    user_account uuid,
    version bigint
)
"""

WRITE_MANY = """
CREATE FUNCTION card_follow_up_write_many(p_calls card_follow_up_call[])
RETURNS TABLE (n integer, stale boolean, refused_account uuid, available bigint)
LANGUAGE plpgsql AS $$
-- `card_follow_up_write` for each call, in order, in the caller's one transaction: a row per
-- call, n its place in p_calls. Every row a call locks is locked first, all calls' at once and
-- in one order — the authorizations by id, then the ruled accounts by id — as
-- `card_authorization_write_many` does and for the same reason: no two transactions each
-- holding what the other's next call waits for.
DECLARE
    v_call card_follow_up_call;
    v_n integer := 0;
BEGIN
    PERFORM FROM card_transactions t
    WHERE t.id IN (SELECT x.transaction FROM unnest(p_calls) x)
    ORDER BY t.id FOR UPDATE;
    PERFORM FROM ledger_accounts a
    WHERE a.id IN (SELECT unnest(x.accounts) FROM unnest(p_calls) x)
      AND (a.debits_must_not_exceed_credits OR a.credits_must_not_exceed_debits)
    ORDER BY a.id FOR UPDATE;
    FOREACH v_call IN ARRAY p_calls LOOP
        v_n := v_n + 1;
        RETURN QUERY
        SELECT v_n, w.stale, w.refused_account, w.available
        FROM card_follow_up_write(
            v_call.transaction, v_call.changes, v_call.fees, v_call.message, v_call.events,
            v_call.transfers, v_call.accounts, v_call.debits_pending, v_call.debits_posted,
            v_call.credits_pending, v_call.credits_posted, v_call.allowances, v_call.currency,
            v_call.user_account, v_call.version) w;
    END LOOP;
END
$$
"""

ENTRY_POINTS = (
    "card_follow_up_context_many(card_follow_up_ask[])",
    "card_follow_up_write_many(card_follow_up_call[])",
)


def _write_many() -> Any:
    """The authorizations' migration, whose set-up and removal of such functions this one
    shares."""
    path = Path(__file__).with_name("2026_12_03_write_many.py")
    spec = importlib.util.spec_from_file_location("write_many", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    for statement in (ASK, CONTEXT_MANY, CALL, WRITE_MANY):
        op.execute(statement)
    _write_many().plan_once(ENTRY_POINTS)


def downgrade() -> None:
    _write_many().drop(ENTRY_POINTS, ("card_follow_up_call", "card_follow_up_ask"))
