"""`cardcore ledger verify`: prove the books balance.

1. Per currency, all debits equal all credits — posted and pending separately.
2. Every account's cached totals (its row plus its unfolded deltas) equal the sum of its
   transfers: posted = singles + posts; pending = pending transfers not yet resolved.
3. No pending transfer has more than one resolution (also a unique index), and every
   resolution points at a pending transfer of the same accounts and currency.
4. No transfer touches an account of another program than its own: money never crosses
   tenants, which is also what keeps a test program's play money apart from live money.
Returns a list of human-readable problems; empty means the ledger is consistent.
"""

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.models.ids import from_uuid

# An account's totals: its row plus the deltas not yet folded into it (models/ledger.py).
_ACCOUNTS = """
    WITH accounts AS (
        SELECT a.id, a.currency,
               a.debits_pending + coalesce(d.debits_pending, 0) AS debits_pending,
               a.debits_posted + coalesce(d.debits_posted, 0) AS debits_posted,
               a.credits_pending + coalesce(d.credits_pending, 0) AS credits_pending,
               a.credits_posted + coalesce(d.credits_posted, 0) AS credits_posted
        FROM ledger_accounts a
        LEFT JOIN (
            SELECT account_id, sum(debits_pending) AS debits_pending,
                   sum(debits_posted) AS debits_posted, sum(credits_pending) AS credits_pending,
                   sum(credits_posted) AS credits_posted
            FROM ledger_account_deltas GROUP BY account_id
        ) d ON d.account_id = a.id
    )
"""

_BALANCED = text(
    _ACCOUNTS  # noqa: S608 - constant SQL, no input
    + """
    SELECT currency,
           sum(debits_posted) - sum(credits_posted) AS posted_gap,
           sum(debits_pending) - sum(credits_pending) AS pending_gap
    FROM accounts
    GROUP BY currency
    HAVING sum(debits_posted) <> sum(credits_posted)
        OR sum(debits_pending) <> sum(credits_pending)
    """
)

# One pass over the transfers, grouped by account (not a subquery per account: that would read
# every transfer once per account, hopeless with millions of both).
_CACHED_TOTALS = text(
    _ACCOUNTS  # noqa: S608 - constant SQL, no input
    + """,
    open_pending AS (
        SELECT p.debit_account_id, p.credit_account_id, p.amount FROM ledger_transfers p
        WHERE p.kind = 'pending'
          AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id)
    ),
    moves AS (
        SELECT debit_account_id AS account_id, 0 AS dp, amount AS dq, 0 AS cp, 0 AS cq
        FROM ledger_transfers WHERE kind IN ('single', 'post')
        UNION ALL
        SELECT credit_account_id, 0, 0, 0, amount
        FROM ledger_transfers WHERE kind IN ('single', 'post')
        UNION ALL
        SELECT debit_account_id, amount, 0, 0, 0 FROM open_pending
        UNION ALL
        SELECT credit_account_id, 0, 0, amount, 0 FROM open_pending
    ),
    expected AS (
        SELECT account_id, sum(dp) AS debits_pending, sum(dq) AS debits_posted,
               sum(cp) AS credits_pending, sum(cq) AS credits_posted
        FROM moves GROUP BY account_id
    ),
    compared AS (
        SELECT a.id, a.debits_posted, coalesce(e.debits_posted, 0) AS e_debits_posted,
               a.credits_posted, coalesce(e.credits_posted, 0) AS e_credits_posted,
               a.debits_pending, coalesce(e.debits_pending, 0) AS e_debits_pending,
               a.credits_pending, coalesce(e.credits_pending, 0) AS e_credits_pending
        FROM accounts a LEFT JOIN expected e ON e.account_id = a.id
    )
    SELECT * FROM compared
    WHERE debits_posted <> e_debits_posted OR credits_posted <> e_credits_posted
       OR debits_pending <> e_debits_pending OR credits_pending <> e_credits_pending
    """
)

_ORPHAN_DELTAS = text(
    """
    SELECT DISTINCT d.account_id FROM ledger_account_deltas d
    LEFT JOIN ledger_accounts a ON a.id = d.account_id
    WHERE a.id IS NULL OR a.debits_must_not_exceed_credits OR a.credits_must_not_exceed_debits
    """
)

_RESOLUTIONS = text(
    """
    SELECT r.id FROM ledger_transfers r
    JOIN ledger_transfers p ON p.id = r.pending_id
    WHERE p.kind <> 'pending'
       OR p.debit_account_id <> r.debit_account_id
       OR p.credit_account_id <> r.credit_account_id
       OR p.currency <> r.currency
       OR (r.kind = 'post' AND r.amount > p.amount)
    """
)


_CROSS_PROGRAM = text(
    """
    SELECT t.id FROM ledger_transfers t
    JOIN ledger_accounts d ON d.id = t.debit_account_id
    JOIN ledger_accounts c ON c.id = t.credit_account_id
    WHERE d.program_id <> t.program_id OR c.program_id <> t.program_id
    """
)


async def verify(session: AsyncSession) -> list[str]:
    problems: list[str] = []
    for currency, posted_gap, pending_gap in await session.execute(_BALANCED):
        problems.append(
            f"{currency}: debits minus credits is {posted_gap} posted, {pending_gap} pending"
        )
    for row in await session.execute(_CACHED_TOTALS):
        problems.append(
            f"account {_public('lac', row[0])}: cached totals (dp {row[1]}, cp {row[3]}, "
            f"dq {row[5]}, cq {row[7]}) differ from its transfers (dp {row[2]}, "
            f"cp {row[4]}, dq {row[6]}, cq {row[8]})"
        )
    for (account_id,) in await session.execute(_ORPHAN_DELTAS):
        problems.append(
            f"deltas for {_public('lac', account_id)}, which is missing or has a balance rule"
        )
    for (transfer_id,) in await session.execute(_RESOLUTIONS):
        problems.append(
            f"transfer {_public('ltr', transfer_id)} does not match the pending transfer "
            "it resolves"
        )
    for (transfer_id,) in await session.execute(_CROSS_PROGRAM):
        problems.append(
            f"transfer {_public('ltr', transfer_id)} touches an account of another program"
        )
    return problems


def _public(prefix: str, value: object) -> str:
    return from_uuid(prefix, value) if isinstance(value, uuid.UUID) else str(value)
