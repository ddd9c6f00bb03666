"""the authorization path's functions: one read, one write

Revision ID: 2026_12_03_auth_functions
Revises: 2026_12_03_i16_reports
Create Date: 2026-12-03 11:00:00+00:00

A card authorization costs four round trips: BEGIN, `card_authorization_context` (everything the
decision needs, read after the card's row lock), `card_authorization_write` (everything the
decision writes) and COMMIT. Python decides in between (`cards/controls.evaluate`); these
functions only read and write. What they share with the rest of cardcore is a function of its own
that both call, so it exists once:

- `ledger_apply`: a ruled ledger account's conditional update (its balance rules);
- `card_spend_add` / `card_spent`: the spend counters, added to and read;
- `fee_versions_in_effect`: the fee schedule versions in effect for a card's product.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "2026_12_03_auth_functions"
down_revision: str | None = "2026_12_03_i16_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER_APPLY = """
CREATE FUNCTION ledger_apply(
    p_account uuid,
    p_debits_pending bigint,
    p_debits_posted bigint,
    p_credits_pending bigint,
    p_credits_posted bigint,
    p_currency varchar,
    p_allowance bigint,
    p_check boolean
) RETURNS SETOF ledger_accounts
LANGUAGE sql AS $$
    -- Applies a change to an account that has a balance rule, if its new totals keep the rules:
    -- the account's new row, or no row (nothing changed or locked) when the account has no
    -- rule, is of another currency, or would break its rules. A change that takes nothing from
    -- the account (a credit, a release) always keeps them, so a reload pays back an overdraft;
    -- one that takes may take it down to -p_allowance, which the account then remembers as its
    -- deepest allowance (the CHECK constraint's backstop). Without p_check (putting back a
    -- change just made) only the CHECK constraints are asked.
    UPDATE ledger_accounts a SET
        debits_pending = a.debits_pending + p_debits_pending,
        debits_posted = a.debits_posted + p_debits_posted,
        credits_pending = a.credits_pending + p_credits_pending,
        credits_posted = a.credits_posted + p_credits_posted,
        overdraft_limit = CASE WHEN p_allowance > 0
            THEN greatest(a.overdraft_limit, p_allowance) ELSE a.overdraft_limit END
    WHERE a.id = p_account
      AND a.currency = p_currency
      AND (a.debits_must_not_exceed_credits OR a.credits_must_not_exceed_debits)
      AND (NOT p_check OR (
            (p_debits_pending = 0 OR a.debits_pending + p_debits_pending >= 0)
        AND (p_debits_posted = 0 OR a.debits_posted + p_debits_posted >= 0)
        AND (p_credits_pending = 0 OR a.credits_pending + p_credits_pending >= 0)
        AND (p_credits_posted = 0 OR a.credits_posted + p_credits_posted >= 0)
        AND (NOT a.debits_must_not_exceed_credits
             OR p_debits_pending + p_debits_posted <= p_credits_posted
             OR a.debits_pending + p_debits_pending + a.debits_posted + p_debits_posted
                <= a.credits_posted + p_credits_posted + p_allowance)
        AND (NOT a.credits_must_not_exceed_debits
             OR p_credits_pending + p_credits_posted <= p_debits_posted
             OR a.credits_pending + p_credits_pending + a.credits_posted + p_credits_posted
                <= a.debits_posted + p_debits_posted)))
    RETURNING a.*
$$
"""

CARD_SPEND = """
CREATE FUNCTION card_spend_add(
    p_card uuid, p_channels varchar[], p_periods varchar[], p_starts timestamptz[], p_amount bigint
) RETURNS void
LANGUAGE sql AS $$
    -- One statement whatever the number of counters: the keys travel as arrays.
    INSERT INTO card_spend_counters AS c (card_id, channel, period, period_start, amount, count)
    SELECT p_card, k.channel, k.period, k.period_start, p_amount, 1
    FROM unnest(p_channels, p_periods, p_starts) AS k(channel, period, period_start)
    ON CONFLICT (card_id, channel, period, period_start)
    DO UPDATE SET amount = c.amount + excluded.amount, count = c.count + excluded.count
$$;

CREATE FUNCTION card_spent(p_card uuid, p_periods varchar[], p_starts timestamptz[])
RETURNS TABLE (channel varchar, period varchar, amount bigint, count integer)
LANGUAGE sql STABLE AS $$
    -- The card's counters for the periods that began at p_starts (one start per period).
    SELECT c.channel, c.period, c.amount, c.count
    FROM card_spend_counters c
    JOIN unnest(p_periods, p_starts) AS s(period, period_start)
      ON s.period = c.period AND s.period_start = c.period_start
    WHERE c.card_id = p_card
$$
"""

FEE_VERSIONS = """
CREATE FUNCTION fee_versions_in_effect(p_program uuid, p_product uuid, p_at timestamptz)
RETURNS TABLE (id uuid, product_id uuid, fees jsonb)
LANGUAGE sql STABLE AS $$
    -- The program's version in effect at p_at, and the product's (none when p_product is null).
    SELECT DISTINCT ON (f.product_id) f.id, f.product_id, f.fees
    FROM fee_schedules f
    WHERE f.program_id = p_program
      AND f.effective_from <= p_at
      AND (f.product_id IS NULL OR f.product_id = p_product)
    ORDER BY f.product_id NULLS FIRST, f.effective_from DESC, f.version DESC
$$
"""

CONTEXT = """
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
    p_touch_after interval
) RETURNS TABLE (
    key_ok boolean,
    card cards,
    program programs,
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
BEGIN
    -- The network key, checked afresh on every message: revoked, or its program suspended,
    -- and nothing more is read (the caller then answers as the API key check would). No key:
    -- the caller checked it already.
    key_ok := p_key IS NULL OR EXISTS (
        SELECT 1 FROM api_keys k JOIN programs p ON p.id = k.program_id
        WHERE k.id = p_key AND k.program_id = p_program AND k.kind = 'network'
          AND k.revoked_at IS NULL AND p.status = 'ACTIVE');
    IF NOT key_ok THEN
        RETURN NEXT;
        RETURN;
    END IF;
    -- Use is recorded at most once per interval; a request that finds the row locked leaves
    -- it to the one recording the same use rather than wait for it.
    UPDATE api_keys SET last_used_at = now()
    WHERE id = (SELECT k.id FROM api_keys k
                WHERE k.id = p_key
                  AND (k.last_used_at IS NULL OR k.last_used_at < now() - p_touch_after)
                FOR UPDATE SKIP LOCKED);

    -- The card's row lock: messages about one card are decided one at a time.
    IF p_card IS NOT NULL THEN
        SELECT c.* INTO card FROM cards c
        WHERE c.id = p_card AND c.program_id = p_program FOR UPDATE;
    ELSE
        SELECT c.* INTO card FROM cards c
        WHERE c.program_id = p_program AND c.pan_hash = p_pan_hash AND c.replaced_by IS NULL
        FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        card := NULL;
        RETURN NEXT;
        RETURN;
    END IF;

    -- Each statement from here on sees what a message about the same card committed while
    -- this one waited for the lock: its answer (a retransmission), its hold, its spend.
    SELECT p.* INTO program FROM programs p WHERE p.id = p_program;
    SELECT b.currency, b.ledger_account_id INTO balance_currency, user_account
    FROM balances b WHERE b.id = (card).balance_id;
    SELECT a.credits_posted - a.debits_posted - a.debits_pending INTO available
    FROM ledger_accounts a WHERE a.id = user_account;
    SELECT pb.ledger_account_id, pb.id, pb.low_balance_threshold
    INTO deposit_account, deposit_balance, deposit_threshold
    FROM partner_balances pb
    WHERE pb.program_id = p_program AND pb.type = 'DEPOSIT' AND pb.currency = balance_currency;
    SELECT e.response, e.amount, t.card_id INTO previous, previous_amount, previous_card
    FROM card_transaction_events e JOIN card_transactions t ON t.id = e.transaction_id
    WHERE e.network_key = p_network_key;
    SELECT json_agg(json_build_array(s.channel, s.period, s.amount, s.count)) INTO spent
    FROM card_spent((card).id, p_periods, p_starts) s;
    SELECT json_agg(json_build_array(v.id, v.fees) ORDER BY v.product_id NULLS FIRST)
    INTO fee_versions
    FROM fee_versions_in_effect(p_program, (card).product_id, p_at) v;
    IF p_currency IS DISTINCT FROM balance_currency THEN
        SELECT r.rate INTO fx_rate FROM fx_rates r
        WHERE r.program_id = p_program AND r.base = p_currency AND r.quote = balance_currency;
    END IF;
    RETURN NEXT;
END
$$
"""

WRITE = """
CREATE FUNCTION card_authorization_write(
    p_transaction jsonb,
    p_message jsonb,
    p_event jsonb,
    p_transfers jsonb,
    p_fees jsonb,
    p_user_account uuid,
    p_deposit_account uuid,
    p_spend_channels varchar[],
    p_spend_periods varchar[],
    p_spend_starts timestamptz[],
    p_spend_amount bigint
) RETURNS TABLE (refused_account uuid, available bigint, deposit_available bigint)
LANGUAGE plpgsql AS $$
-- Everything an authorization writes, as its caller decided it, rows given as JSON objects of
-- their columns: the pending ledger transfers (the hold, the deposit leg, the fee holds), the
-- transaction, its fee lines, its network message, its outbox event and the card's spend.
-- When a ruled account cannot pay its part, nothing is written and refused_account names it.
-- With transfers, the message's response gets the user's balance after the hold as its
-- available_balance.
DECLARE
    v_now jsonb := jsonb_build_object('created_at', now(), 'updated_at', now());
    v_move record;
    v_row ledger_accounts;
    v_currency varchar := p_transfers -> 0 ->> 'currency';
    v_done uuid[] := '{}';
    v_done_debits bigint[] := '{}';
    v_done_credits bigint[] := '{}';
    v_message jsonb := p_message;
BEGIN
    -- The totals first: ruled accounts (the card's balance, a partner deposit) in id order, so
    -- that two transactions never wait on each other's accounts in a circle; accounts without
    -- rules get delta rows (see models/ledger.py), after every ruled one agreed.
    FOR v_move IN
        SELECT m.account, sum(m.debits)::bigint AS debits, sum(m.credits)::bigint AS credits,
               a.debits_must_not_exceed_credits OR a.credits_must_not_exceed_debits AS ruled
        FROM (SELECT (t ->> 'debit_account_id')::uuid AS account,
                     (t ->> 'amount')::bigint AS debits, 0::bigint AS credits
              FROM jsonb_array_elements(p_transfers) t
              UNION ALL
              SELECT (t ->> 'credit_account_id')::uuid, 0, (t ->> 'amount')::bigint
              FROM jsonb_array_elements(p_transfers) t) m
        JOIN ledger_accounts a ON a.id = m.account
        GROUP BY m.account, a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits
        ORDER BY 4 DESC, 1
    LOOP
        IF v_move.ruled THEN
            SELECT * INTO v_row FROM ledger_apply(
                v_move.account, v_move.debits, 0, v_move.credits, 0, v_currency, 0, true);
            IF NOT FOUND THEN
                FOR i IN 1 .. coalesce(array_length(v_done, 1), 0) LOOP
                    PERFORM ledger_apply(
                        v_done[i], -v_done_debits[i], 0, -v_done_credits[i], 0, v_currency, 0,
                        false);
                END LOOP;
                refused_account := v_move.account;
                RETURN NEXT;
                RETURN;
            END IF;
            v_done := v_done || v_move.account;
            v_done_debits := v_done_debits || v_move.debits;
            v_done_credits := v_done_credits || v_move.credits;
            IF v_move.account = p_user_account THEN
                available := v_row.credits_posted - v_row.debits_posted - v_row.debits_pending;
            END IF;
            IF v_move.account = p_deposit_account THEN
                deposit_available :=
                    v_row.credits_posted - v_row.debits_posted - v_row.debits_pending;
            END IF;
        ELSE
            INSERT INTO ledger_account_deltas (
                account_id, debits_pending, debits_posted, credits_pending, credits_posted)
            VALUES (v_move.account, v_move.debits, 0, v_move.credits, 0);
        END IF;
    END LOOP;
    IF jsonb_array_length(p_transfers) > 0 THEN
        v_message := jsonb_set(
            v_message, '{response,available_balance}', to_jsonb(available));
    END IF;

    INSERT INTO ledger_transfers
    SELECT r.* FROM jsonb_array_elements(p_transfers) t,
        jsonb_populate_record(NULL::ledger_transfers, v_now || t) r;
    INSERT INTO card_transactions
    SELECT r.* FROM jsonb_populate_record(NULL::card_transactions, v_now || p_transaction) r;
    INSERT INTO fees
    SELECT r.* FROM jsonb_array_elements(p_fees) f,
        jsonb_populate_record(NULL::fees, v_now || f) r;
    INSERT INTO card_transaction_events
    SELECT r.* FROM jsonb_populate_record(NULL::card_transaction_events, v_now || v_message) r;
    -- The outbox's created_at is the moment of insertion (see models/kit.py).
    INSERT INTO events
    SELECT r.* FROM jsonb_populate_record(
        NULL::events, jsonb_build_object('created_at', clock_timestamp()) || p_event) r;
    IF p_spend_amount IS NOT NULL THEN
        PERFORM card_spend_add(
            (p_transaction ->> 'card_id')::uuid, p_spend_channels, p_spend_periods,
            p_spend_starts, p_spend_amount);
    END IF;
    RETURN NEXT;
END
$$
"""

FUNCTIONS = (
    "card_authorization_write(jsonb, jsonb, jsonb, jsonb, jsonb, uuid, uuid, varchar[], "
    "varchar[], timestamptz[], bigint)",
    "card_authorization_context(uuid, uuid, uuid, bytea, varchar, varchar, varchar[], "
    "timestamptz[], timestamptz, interval)",
    "fee_versions_in_effect(uuid, uuid, timestamptz)",
    "card_spent(uuid, varchar[], timestamptz[])",
    "card_spend_add(uuid, varchar[], varchar[], timestamptz[], bigint)",
    "ledger_apply(uuid, bigint, bigint, bigint, bigint, varchar, bigint, boolean)",
)


def upgrade() -> None:
    for statement in (LEDGER_APPLY, *CARD_SPEND.split(";\n\n"), FEE_VERSIONS, CONTEXT, WRITE):
        op.execute(statement)


def downgrade() -> None:
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION {signature}")
