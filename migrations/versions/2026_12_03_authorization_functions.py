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
-- Three statements: the key, the card's lock, then everything else in one. Each statement of a
-- function takes its own snapshot, so the last sees what a message about the same card
-- committed while this one waited for the lock: its answer (a retransmission), its hold, its
-- spend.
DECLARE
    v_stale boolean;
BEGIN
    -- The network key, checked afresh on every message: revoked, or its program suspended,
    -- and nothing more is read (the caller then answers as the API key check would). No key:
    -- the caller checked it already.
    key_ok := true;
    IF p_key IS NOT NULL THEN
        SELECT k.revoked_at IS NULL AND p.status = 'ACTIVE',
               k.last_used_at IS NULL OR k.last_used_at < now() - p_touch_after
        INTO key_ok, v_stale
        FROM api_keys k JOIN programs p ON p.id = k.program_id
        WHERE k.id = p_key AND k.program_id = p_program AND k.kind = 'network';
        IF key_ok IS NOT TRUE THEN
            key_ok := false;
            RETURN NEXT;
            RETURN;
        END IF;
        -- Use is recorded at most once per interval; a request that finds the row locked
        -- leaves it to the one recording the same use rather than wait for it.
        IF v_stale THEN
            UPDATE api_keys SET last_used_at = now()
            WHERE id = (SELECT k.id FROM api_keys k WHERE k.id = p_key
                        FOR UPDATE SKIP LOCKED);
        END IF;
    END IF;

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

WRITE = """
CREATE FUNCTION card_authorization_write(
    p_transaction jsonb,
    p_message jsonb,
    p_event jsonb,
    p_transfers jsonb,
    p_fees jsonb,
    p_accounts uuid[],
    p_debits bigint[],
    p_credits bigint[],
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
-- p_accounts (in id order) with what the transfers take from and give to each: the totals to
-- move. When a ruled account cannot pay its part, nothing is written and refused_account names
-- it. With transfers, the message's response gets the user's balance after the hold as its
-- available_balance.
DECLARE
    v_now jsonb := jsonb_build_object('created_at', now(), 'updated_at', now());
    v_move record;
    v_row ledger_accounts;
    v_currency varchar := p_transfers -> 0 ->> 'currency';
    v_done integer[] := '{}';
    v_buffered integer[] := '{}';
    v_message jsonb := p_message;
BEGIN
    -- Ruled accounts (the card's balance, a partner deposit) in id order, so that two
    -- transactions never wait on each other's accounts in a circle; accounts without rules
    -- get delta rows (see models/ledger.py), once every ruled one agreed.
    FOR v_move IN
        SELECT m.n, m.account, m.debits, m.credits,
               a.debits_must_not_exceed_credits OR a.credits_must_not_exceed_debits AS ruled
        FROM unnest(p_accounts, p_debits, p_credits) WITH ORDINALITY
             AS m(account, debits, credits, n)
        JOIN ledger_accounts a ON a.id = m.account
        ORDER BY m.n
    LOOP
        IF NOT v_move.ruled THEN
            v_buffered := v_buffered || v_move.n::integer;
            CONTINUE;
        END IF;
        SELECT * INTO v_row FROM ledger_apply(
            v_move.account, v_move.debits, 0, v_move.credits, 0, v_currency, 0, true);
        IF NOT FOUND THEN
            FOR i IN 1 .. coalesce(array_length(v_done, 1), 0) LOOP
                PERFORM ledger_apply(
                    p_accounts[v_done[i]], -p_debits[v_done[i]], 0, -p_credits[v_done[i]], 0,
                    v_currency, 0, false);
            END LOOP;
            refused_account := v_move.account;
            RETURN NEXT;
            RETURN;
        END IF;
        v_done := v_done || v_move.n::integer;
        IF v_move.account = p_user_account THEN
            available := v_row.credits_posted - v_row.debits_posted - v_row.debits_pending;
        ELSIF v_move.account = p_deposit_account THEN
            deposit_available := v_row.credits_posted - v_row.debits_posted - v_row.debits_pending;
        END IF;
    END LOOP;
    IF jsonb_array_length(p_transfers) > 0 THEN
        v_message := jsonb_set(v_message, '{response,available_balance}', to_jsonb(available));
    END IF;

    -- One statement for every row (foreign keys are checked at its end, when all are in).
    WITH deltas AS (
        INSERT INTO ledger_account_deltas (
            account_id, debits_pending, debits_posted, credits_pending, credits_posted)
        SELECT p_accounts[i], p_debits[i], 0, p_credits[i], 0 FROM unnest(v_buffered) i
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

FUNCTIONS = (
    "card_authorization_write(jsonb, jsonb, jsonb, jsonb, jsonb, uuid[], bigint[], bigint[], "
    "uuid, uuid, varchar[], varchar[], timestamptz[], bigint)",
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
