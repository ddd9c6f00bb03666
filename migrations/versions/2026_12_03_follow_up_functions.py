"""linked ledger moves; the follow-up messages' functions: one read, one write

Revision ID: 2026_12_03_follow_ups
Revises: 2026_12_03_auth_functions
Create Date: 2026-12-03 14:00:00+00:00

Clearings, reversals, incremental authorizations, linked refunds and hold expiries cost what an
authorization costs: BEGIN, `card_follow_up_context` (the authorization locked, then what the
message needs), `card_follow_up_write` (everything it writes) and COMMIT.

The ledger part of every write is `ledger_linked`: a list of account changes applied all or none,
each ruled account through `ledger_apply`, accounts in id order (so two writers never wait on
each other in a circle) and an account's own changes in the order given (so each is checked
against the totals the one before it left, as transfer after transfer would be). The
authorization's write now calls it too, so the order and the undo exist once.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "2026_12_03_follow_ups"
down_revision: str | None = "2026_12_03_auth_functions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOVEMENT = """
CREATE TYPE ledger_movement AS (
    account uuid,
    ruled boolean,
    refused boolean,
    debits_pending bigint,
    debits_posted bigint,
    credits_pending bigint,
    credits_posted bigint
)
"""

LINKED = """
CREATE FUNCTION ledger_linked(
    p_accounts uuid[],
    p_debits_pending bigint[],
    p_debits_posted bigint[],
    p_credits_pending bigint[],
    p_credits_posted bigint[],
    p_allowances bigint[],
    p_currency varchar
) RETURNS SETOF ledger_movement
LANGUAGE plpgsql AS $$
-- Applies the changes to ruled accounts, or none of them. A row comes back per change, as it
-- goes: for a ruled account, the account's totals after it; for an account without rules (whose
-- changes go to delta rows, see models/ledger.py), the change itself, for the caller to insert
-- with its other rows. When a change would break its account's rules, what was applied is put
-- back and a last row names that account (refused).
DECLARE
    v_step record;
    v_row ledger_accounts;
    v_done integer[] := '{}';
BEGIN
    FOR v_step IN
        SELECT m.n, m.account, m.dp, m.dq, m.cp, m.cq, m.allowance,
               a.debits_must_not_exceed_credits OR a.credits_must_not_exceed_debits AS ruled
        FROM unnest(p_accounts, p_debits_pending, p_debits_posted, p_credits_pending,
                    p_credits_posted, p_allowances) WITH ORDINALITY
             AS m(account, dp, dq, cp, cq, allowance, n)
        JOIN ledger_accounts a ON a.id = m.account
        ORDER BY m.account, m.n
    LOOP
        IF NOT v_step.ruled THEN
            RETURN NEXT ROW(v_step.account, false, false, v_step.dp, v_step.dq, v_step.cp,
                            v_step.cq)::ledger_movement;
            CONTINUE;
        END IF;
        SELECT * INTO v_row FROM ledger_apply(
            v_step.account, v_step.dp, v_step.dq, v_step.cp, v_step.cq, p_currency,
            v_step.allowance, true);
        IF NOT FOUND THEN
            FOR i IN REVERSE coalesce(array_length(v_done, 1), 0) .. 1 LOOP
                PERFORM ledger_apply(
                    p_accounts[v_done[i]], -p_debits_pending[v_done[i]],
                    -p_debits_posted[v_done[i]], -p_credits_pending[v_done[i]],
                    -p_credits_posted[v_done[i]], p_currency, 0, false);
            END LOOP;
            RETURN NEXT ROW(v_step.account, true, true, NULL, NULL, NULL, NULL)::ledger_movement;
            RETURN;
        END IF;
        v_done := v_done || v_step.n::integer;
        RETURN NEXT ROW(v_row.id, true, false, v_row.debits_pending, v_row.debits_posted,
                        v_row.credits_pending, v_row.credits_posted)::ledger_movement;
    END LOOP;
END
$$
"""

LINKED_WRITE = """
CREATE FUNCTION ledger_linked_write(
    p_transfers jsonb,
    p_accounts uuid[],
    p_debits_pending bigint[],
    p_debits_posted bigint[],
    p_credits_pending bigint[],
    p_credits_posted bigint[],
    p_allowances bigint[],
    p_currency varchar
) RETURNS SETOF ledger_movement
LANGUAGE plpgsql AS $$
-- `ledger_linked`, then (unless refused) the transfers' rows and the delta rows of the accounts
-- without rules: linked transfers recorded all or none.
DECLARE
    v_moves ledger_movement[];
    v_now jsonb := jsonb_build_object('created_at', now());
BEGIN
    SELECT coalesce(array_agg(m), '{}') INTO v_moves
    FROM ledger_linked(p_accounts, p_debits_pending, p_debits_posted, p_credits_pending,
                       p_credits_posted, p_allowances, p_currency) m;
    IF v_moves[cardinality(v_moves)].refused THEN
        RETURN NEXT v_moves[cardinality(v_moves)];
        RETURN;
    END IF;
    WITH deltas AS (
        INSERT INTO ledger_account_deltas (
            account_id, debits_pending, debits_posted, credits_pending, credits_posted)
        SELECT m.account, m.debits_pending, m.debits_posted, m.credits_pending, m.credits_posted
        FROM unnest(v_moves) m WHERE NOT m.ruled
    )
    INSERT INTO ledger_transfers
    SELECT r.* FROM jsonb_array_elements(p_transfers) t,
        jsonb_populate_record(NULL::ledger_transfers, v_now || t) r;
    RETURN QUERY SELECT * FROM unnest(v_moves);
END
$$
"""

NETWORK_KEY_CHECK = """
CREATE FUNCTION network_key_check(p_key uuid, p_program uuid, p_touch_after interval)
RETURNS boolean
LANGUAGE plpgsql AS $$
-- Whether a network key of the program is still good (not revoked, its program not
-- suspended): asked on every network message, inside the message's first read, so a revocation
-- takes effect at the next message in every process. Use is recorded at most once per
-- p_touch_after; a request that finds the key's row locked leaves it to the one recording the
-- same use rather than wait for it.
DECLARE
    v_ok boolean;
    v_stale boolean;
BEGIN
    SELECT k.revoked_at IS NULL AND p.status = 'ACTIVE',
           k.last_used_at IS NULL OR k.last_used_at < now() - p_touch_after
    INTO v_ok, v_stale
    FROM api_keys k JOIN programs p ON p.id = k.program_id
    WHERE k.id = p_key AND k.program_id = p_program AND k.kind = 'network';
    IF v_ok IS NOT TRUE THEN
        RETURN false;
    END IF;
    IF v_stale THEN
        UPDATE api_keys SET last_used_at = now()
        WHERE id = (SELECT k.id FROM api_keys k WHERE k.id = p_key FOR UPDATE SKIP LOCKED);
    END IF;
    RETURN true;
END
$$
"""

AUTHORIZATION_CONTEXT = """
CREATE FUNCTION card_authorization_context(
    p_key uuid,
    p_program uuid,
    p_card uuid,
    p_pan_hash bytea,
    p_network_key varchar,
    p_currency varchar,
    p_periods varchar[],
    p_starts timestamptz[],
    p_at timestamptz,
    p_touch_after interval,
    p_lock boolean
) RETURNS TABLE (
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
-- Three statements: the key, the card (locked with p_lock), then everything else in one. Each
-- statement of a function takes its own snapshot, so under the lock the last sees what a
-- message about the same card committed while this one waited: its answer (a retransmission),
-- its hold, its spend. Without the lock (a read in a transaction of its own, whose write then
-- checks nothing changed: see card_authorization_write) the card's row version comes back.
DECLARE
    v_card record;
BEGIN
    -- The network key, checked afresh on every message (no key: the caller checked it).
    key_ok := p_key IS NULL OR network_key_check(p_key, p_program, p_touch_after);
    IF NOT key_ok THEN
        RETURN NEXT;
        RETURN;
    END IF;

    -- The card's row lock: messages about one card are decided one at a time.
    IF p_card IS NOT NULL AND p_lock THEN
        SELECT c AS card, c.xmin::text::bigint AS version INTO v_card FROM cards c
        WHERE c.id = p_card AND c.program_id = p_program FOR UPDATE;
    ELSIF p_card IS NOT NULL THEN
        SELECT c AS card, c.xmin::text::bigint AS version INTO v_card FROM cards c
        WHERE c.id = p_card AND c.program_id = p_program;
    ELSIF p_lock THEN
        SELECT c AS card, c.xmin::text::bigint AS version INTO v_card FROM cards c
        WHERE c.program_id = p_program AND c.pan_hash = p_pan_hash AND c.replaced_by IS NULL
        FOR UPDATE;
    ELSE
        SELECT c AS card, c.xmin::text::bigint AS version INTO v_card FROM cards c
        WHERE c.program_id = p_program AND c.pan_hash = p_pan_hash AND c.replaced_by IS NULL;
    END IF;
    IF NOT FOUND THEN
        card := NULL;
        RETURN NEXT;
        RETURN;
    END IF;
    card := v_card.card;
    card_version := v_card.version;

    SELECT p.timezone, p.home_country, p.control_maxima, p.fx_markup_bps,
           b.currency, b.ledger_account_id,
           a.credits_posted - a.debits_posted - a.debits_pending,
           pb.ledger_account_id, pb.id, pb.low_balance_threshold,
           e.response, e.amount, t.card_id,
           (SELECT json_agg(json_build_array(s.channel, s.period, s.amount, s.count))
            FROM card_spent((card).id, p_periods, p_starts) s),
           (SELECT json_agg(json_build_array(v.id, v.fees) ORDER BY v.product_id NULLS FIRST)
            FROM fee_versions_in_effect(p_program, (card).product_id, p_at) v),
           (SELECT r.rate FROM fx_rates r
            WHERE p_currency <> b.currency
              AND r.program_id = p_program AND r.base = p_currency AND r.quote = b.currency)
    INTO timezone, home_country, control_maxima, fx_markup_bps,
         balance_currency, user_account, available,
         deposit_account, deposit_balance, deposit_threshold,
         previous, previous_amount, previous_card, spent, fee_versions, fx_rate
    FROM programs p
    JOIN balances b ON b.id = (card).balance_id
    JOIN ledger_accounts a ON a.id = b.ledger_account_id
    LEFT JOIN partner_balances pb
      ON pb.program_id = p_program AND pb.type = 'DEPOSIT' AND pb.currency = b.currency
    LEFT JOIN card_transaction_events e ON e.network_key = p_network_key
    LEFT JOIN card_transactions t ON t.id = e.transaction_id
    WHERE p.id = p_program;
    RETURN NEXT;
END
$$
"""

AUTHORIZATION_WRITE = """
CREATE FUNCTION card_authorization_write(
    p_transaction jsonb,
    p_message jsonb,
    p_event jsonb,
    p_transfers jsonb,
    p_fees jsonb,
    p_accounts uuid[],
    p_debits_pending bigint[],
    p_debits_posted bigint[],
    p_credits_pending bigint[],
    p_credits_posted bigint[],
    p_allowances bigint[],
    p_user_account uuid,
    p_deposit_account uuid,
    p_spend_channels varchar[],
    p_spend_periods varchar[],
    p_spend_starts timestamptz[],
    p_spend_amount bigint,
    p_card_version bigint,
    p_periods varchar[],
    p_starts timestamptz[],
    p_spent_count bigint
) RETURNS TABLE (
    stale boolean, refused_account uuid, available bigint, deposit_available bigint
)
LANGUAGE plpgsql AS $$
-- Everything an authorization writes, as its caller decided it, rows given as JSON objects of
-- their columns: the pending ledger transfers (the hold, the deposit leg, the fee holds), the
-- transaction, its fee lines, its network message, its outbox event and the card's spend.
-- p_accounts and the changes beside it (ledger.Linked's): the totals to move, through
-- `ledger_linked`. When a ruled account cannot pay its part, nothing is written
-- and refused_account names it. With transfers, the message's response gets the user's balance
-- after the hold as its available_balance.
--
-- With p_card_version, the decision was made on a read without the card's lock, in a
-- transaction of its own: the card is locked now, and if anything the decision read may have
-- changed since — the card's row (its version), a message with these network ids, the card's
-- spend (counters only grow: their count over p_periods' current periods, p_spent_count as
-- read) — nothing is written and stale says so, for the caller to read and decide again.
-- Everything else the decision read is as of that read, as if the message had come a moment
-- earlier; the balance rules are checked here, whatever was read.
DECLARE
    v_now jsonb := jsonb_build_object('created_at', now(), 'updated_at', now());
    v_moves ledger_movement[];
    v_move ledger_movement;
    v_message jsonb := p_message;
BEGIN
    stale := false;
    IF p_card_version IS NOT NULL THEN
        SELECT c.xmin::text::bigint IS DISTINCT FROM p_card_version
            OR EXISTS (SELECT FROM card_transaction_events e
                       WHERE e.network_key = p_message ->> 'network_key')
            OR (SELECT coalesce(sum(s.count), 0) FROM card_spent(c.id, p_periods, p_starts) s)
               <> p_spent_count
        INTO stale
        FROM cards c WHERE c.id = (p_transaction ->> 'card_id')::uuid FOR UPDATE;
        IF stale THEN
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    SELECT coalesce(array_agg(m), '{}') INTO v_moves
    FROM ledger_linked(p_accounts, p_debits_pending, p_debits_posted, p_credits_pending,
                       p_credits_posted, p_allowances, p_transfers -> 0 ->> 'currency') m;
    IF v_moves[cardinality(v_moves)].refused THEN
        refused_account := v_moves[cardinality(v_moves)].account;
        RETURN NEXT;
        RETURN;
    END IF;
    FOREACH v_move IN ARRAY v_moves LOOP
        IF v_move.ruled AND v_move.account = p_user_account THEN
            available := v_move.credits_posted - v_move.debits_posted - v_move.debits_pending;
        ELSIF v_move.ruled AND v_move.account = p_deposit_account THEN
            deposit_available :=
                v_move.credits_posted - v_move.debits_posted - v_move.debits_pending;
        END IF;
    END LOOP;
    IF jsonb_array_length(p_transfers) > 0 THEN
        v_message := jsonb_set(v_message, '{response,available_balance}', to_jsonb(available));
    END IF;

    -- One statement for every row (foreign keys are checked at its end, when all are in).
    WITH deltas AS (
        INSERT INTO ledger_account_deltas (
            account_id, debits_pending, debits_posted, credits_pending, credits_posted)
        SELECT m.account, m.debits_pending, m.debits_posted, m.credits_pending, m.credits_posted
        FROM unnest(v_moves) m WHERE NOT m.ruled
    ), transfers AS (
        INSERT INTO ledger_transfers
        SELECT r.* FROM jsonb_array_elements(p_transfers) t,
            jsonb_populate_record(NULL::ledger_transfers, v_now || t) r
    ), txn AS (
        INSERT INTO card_transactions
        SELECT r.* FROM jsonb_populate_record(NULL::card_transactions, v_now || p_transaction) r
    ), message AS (
        INSERT INTO card_transaction_events
        SELECT r.*
        FROM jsonb_populate_record(NULL::card_transaction_events, v_now || v_message) r
    )
    -- The outbox's created_at is the moment of insertion (see models/events.py).
    INSERT INTO events
    SELECT r.* FROM jsonb_populate_record(
        NULL::events, jsonb_build_object('created_at', clock_timestamp()) || p_event) r;
    -- Apart, and only when there are any: even inserting nothing opens a table and its indexes.
    IF jsonb_array_length(p_fees) > 0 THEN
        INSERT INTO fees
        SELECT r.* FROM jsonb_array_elements(p_fees) f,
            jsonb_populate_record(NULL::fees, v_now || f) r;
    END IF;
    IF p_spend_amount IS NOT NULL THEN
        PERFORM card_spend_add(
            (p_transaction ->> 'card_id')::uuid, p_spend_channels, p_spend_periods,
            p_spend_starts, p_spend_amount);
    END IF;
    RETURN NEXT;
END
$$
"""

FOLLOW_UP_CONTEXT = """
CREATE FUNCTION card_follow_up_context(
    p_key uuid,
    p_program uuid,
    p_transaction uuid,
    p_network_key varchar,
    p_refunds boolean,
    p_touch_after interval,
    p_lock boolean
) RETURNS TABLE (
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
-- The network key (as for an authorization; no key: the caller checked it), the
-- authorization's row lock (messages about one authorization are handled one at a time), then
-- in one statement, which sees what a message about it committed while this one waited:
-- the first answer to these network ids, the balance's account and what it has available, the
-- program's clearing tolerances, the pending transfers of the hold and of its HELD fees, those
-- fees, and (p_refunds) what linked refunds gave back so far. Without p_lock (a read in a
-- transaction of its own, whose write then checks nothing changed) the authorization's row
-- version comes back instead.
DECLARE
    v_found record;
BEGIN
    key_ok := p_key IS NULL OR network_key_check(p_key, p_program, p_touch_after);
    IF NOT key_ok THEN
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_lock THEN
        SELECT t AS row, NULL::bigint AS version INTO v_found FROM card_transactions t
        WHERE t.id = p_transaction AND t.program_id = p_program FOR UPDATE;
    ELSE
        SELECT t AS row, t.xmin::text::bigint AS version INTO v_found FROM card_transactions t
        WHERE t.id = p_transaction AND t.program_id = p_program;
    END IF;
    IF NOT FOUND THEN
        transaction := NULL;
        RETURN NEXT;
        RETURN;
    END IF;
    transaction := v_found.row;
    transaction_version := v_found.version;
    SELECT e.response, e.amount, e.transaction_id, b.ledger_account_id,
           a.credits_posted - a.debits_posted - a.debits_pending, p.clearing_tolerances,
           -- One array of ids, so that the primary key finds them (an OR with a subquery
           -- would read the whole table).
           (SELECT json_agg(h) FROM ledger_transfers h
            WHERE h.id = ANY (ARRAY[(transaction).hold_transfer_id,
                                    (transaction).deposit_hold_transfer_id]
                              || ARRAY(SELECT f.ledger_transfer_id FROM fees f
                                       WHERE f.transaction_id = (transaction).id
                                         AND f.status = 'HELD'))),
           (SELECT json_agg(f ORDER BY f.id) FROM fees f
            WHERE f.transaction_id = (transaction).id AND f.status = 'HELD'),
           CASE WHEN p_refunds THEN
               (SELECT coalesce(sum(r.amount), 0) FROM card_transaction_events r
                WHERE r.transaction_id = (transaction).id AND r.kind = 'refund')
           END
    INTO previous, previous_amount, previous_transaction, user_account, available,
         clearing_tolerances, holds, held_fees, refunded
    FROM balances b
    JOIN ledger_accounts a ON a.id = b.ledger_account_id
    JOIN programs p ON p.id = p_program
    LEFT JOIN card_transaction_events e ON e.network_key = p_network_key
    WHERE b.id = (transaction).balance_id;
    RETURN NEXT;
END
$$
"""

FOLLOW_UP_WRITE = """
CREATE FUNCTION card_follow_up_write(
    p_transaction uuid,
    p_changes jsonb,
    p_fees jsonb,
    p_message jsonb,
    p_events jsonb,
    p_transfers jsonb,
    p_accounts uuid[],
    p_debits_pending bigint[],
    p_debits_posted bigint[],
    p_credits_pending bigint[],
    p_credits_posted bigint[],
    p_allowances bigint[],
    p_currency varchar,
    p_user_account uuid,
    p_version bigint
) RETURNS TABLE (stale boolean, refused_account uuid, available bigint)
LANGUAGE plpgsql AS $$
-- Everything a follow-up message writes, as its caller decided it: the linked ledger transfers
-- (`ledger_linked_write`), the authorization's changed columns (p_changes, none when null), its
-- fee lines' changed columns, the network message and the outbox events. When a ruled account
-- cannot pay its part, nothing is written and refused_account names it. The message's response
-- gets the user's available balance after it all. With p_version, the decision was made on a
-- read without the authorization's lock: it is locked now, and if its row changed since (every
-- follow-up that moves money changes it) or these network ids have an answer, nothing is
-- written and stale says so.
DECLARE
    v_moves ledger_movement[];
    v_move ledger_movement;
BEGIN
    stale := false;
    IF p_version IS NOT NULL THEN
        SELECT t.xmin::text::bigint IS DISTINCT FROM p_version
            OR EXISTS (SELECT FROM card_transaction_events e
                       WHERE e.network_key = p_message ->> 'network_key')
        INTO stale
        FROM card_transactions t WHERE t.id = p_transaction FOR UPDATE;
        IF stale THEN
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    SELECT coalesce(array_agg(m), '{}') INTO v_moves
    FROM ledger_linked_write(p_transfers, p_accounts, p_debits_pending, p_debits_posted,
                             p_credits_pending, p_credits_posted, p_allowances, p_currency) m;
    IF v_moves[cardinality(v_moves)].refused THEN
        refused_account := v_moves[cardinality(v_moves)].account;
        RETURN NEXT;
        RETURN;
    END IF;
    -- An account's last row holds its totals after all of its changes.
    FOREACH v_move IN ARRAY v_moves LOOP
        IF v_move.ruled AND v_move.account = p_user_account THEN
            available := v_move.credits_posted - v_move.debits_posted - v_move.debits_pending;
        END IF;
    END LOOP;
    IF available IS NULL THEN
        SELECT a.credits_posted - a.debits_posted - a.debits_pending INTO available
        FROM ledger_accounts a WHERE a.id = p_user_account;
    END IF;
    IF p_changes IS NOT NULL THEN
        UPDATE card_transactions t SET
            status = p_changes ->> 'status',
            held_amount = (p_changes ->> 'held_amount')::bigint,
            settled_amount = (p_changes ->> 'settled_amount')::bigint,
            hold_transfer_id = (p_changes ->> 'hold_transfer_id')::uuid,
            deposit_hold_transfer_id = (p_changes ->> 'deposit_hold_transfer_id')::uuid,
            updated_at = now()
        WHERE t.id = p_transaction;
    END IF;
    IF jsonb_array_length(p_fees) > 0 THEN
        UPDATE fees f SET
            status = x.status,
            amount = x.amount,
            basis_amount = x.basis_amount,
            ledger_transfer_id = x.ledger_transfer_id,
            charged_at = x.charged_at,
            reason = x.reason,
            next_attempt_at = x.next_attempt_at,
            updated_at = now()
        FROM jsonb_to_recordset(p_fees) AS x(
            id uuid, status varchar, amount bigint, basis_amount bigint,
            ledger_transfer_id uuid, charged_at timestamptz, reason varchar,
            next_attempt_at timestamptz)
        WHERE f.id = x.id;
    END IF;
    -- The outbox's created_at is the moment of insertion (see models/events.py), in their order.
    WITH message AS (
        INSERT INTO card_transaction_events
        SELECT r.* FROM jsonb_populate_record(
            NULL::card_transaction_events,
            jsonb_build_object('created_at', now())
                || jsonb_set(p_message, '{response,available_balance}', to_jsonb(available))) r
    )
    INSERT INTO events
    SELECT r.* FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e(event, n),
        jsonb_populate_record(NULL::events,
            jsonb_build_object('created_at', clock_timestamp()) || e.event) r
    ORDER BY e.n;
    RETURN NEXT;
END
$$
"""

FUNCTIONS = (
    "card_authorization_write(jsonb, jsonb, jsonb, jsonb, jsonb, uuid[], bigint[], bigint[], "
    "bigint[], bigint[], bigint[], uuid, uuid, varchar[], varchar[], timestamptz[], bigint, "
    "bigint, varchar[], timestamptz[], bigint)",
    "card_authorization_context(uuid, uuid, uuid, bytea, varchar, varchar, varchar[], "
    "timestamptz[], timestamptz, interval, boolean)",
    "card_follow_up_write(uuid, jsonb, jsonb, jsonb, jsonb, jsonb, uuid[], bigint[], bigint[], "
    "bigint[], bigint[], bigint[], varchar, uuid, bigint)",
    "card_follow_up_context(uuid, uuid, uuid, varchar, boolean, interval, boolean)",
    "ledger_linked_write(jsonb, uuid[], bigint[], bigint[], bigint[], bigint[], bigint[], varchar)",
    "ledger_linked(uuid[], bigint[], bigint[], bigint[], bigint[], bigint[], varchar)",
    "network_key_check(uuid, uuid, interval)",
)


# The authorization's read and write as 2026_12_03_auth_functions made them.
BEFORE = (
    "card_authorization_write(jsonb, jsonb, jsonb, jsonb, jsonb, uuid[], bigint[], bigint[], "
    "uuid, uuid, varchar[], varchar[], timestamptz[], bigint)",
    "card_authorization_context(uuid, uuid, uuid, bytea, varchar, varchar, varchar[], "
    "timestamptz[], timestamptz, interval)",
)


def upgrade() -> None:
    for signature in BEFORE:
        op.execute(f"DROP FUNCTION {signature}")
    for statement in (
        MOVEMENT,
        NETWORK_KEY_CHECK,
        LINKED,
        LINKED_WRITE,
        AUTHORIZATION_CONTEXT,
        AUTHORIZATION_WRITE,
        FOLLOW_UP_CONTEXT,
        FOLLOW_UP_WRITE,
    ):
        op.execute(statement)


def downgrade() -> None:
    # The authorization's read and write as they were before they called the shared functions.
    path = Path(__file__).with_name("2026_12_03_authorization_functions.py")
    spec = importlib.util.spec_from_file_location("authorization_functions", path)
    assert spec is not None
    assert spec.loader is not None
    before = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(before)
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION {signature}")
    op.execute(before.CONTEXT)
    op.execute(before.WRITE)
    op.execute("DROP TYPE ledger_movement")
