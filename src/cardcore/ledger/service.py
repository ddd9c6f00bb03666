"""Ledger operations. No routes: balances, reloads, transfers and card authorizations use these.

An account with a balance rule changes with one conditional `UPDATE … SET x = x + :amount WHERE
<the rule holds for the new totals> RETURNING …`, accounts one after the other in id order: the
UPDATE takes the row lock, the fixed order means two operations on the same accounts never
deadlock, and no row back means the rule would break — an overdraft, found without a failed
statement, so the caller's transaction goes on without a savepoint. The CHECK constraints stay
underneath: a code path that bypassed this module could still not overdraw. Accounts without a
rule get a delta row instead of an UPDATE (see models/ledger.py): nothing queues on them.

An account's currency and rules never change, so they are cached per process; a transfer on a
hot path costs its UPDATEs and two INSERTs.

Transfers that must move together — a card message's legs and fees, a money transfer's
settlement — are a `Linked`: built in Python, recorded by one database function that applies the
same conditional update (`ledger_apply`) account by account in id order, all of them or none.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.db import driver_connection
from cardcore.kit.errors import CardcoreError
from cardcore.kit.rows import as_row, plain, to_json
from cardcore.ledger.repository import LedgerAccountRepository
from cardcore.models import LedgerAccount, LedgerAccountDelta, LedgerTransfer
from cardcore.models.ids import PrefixedId, from_uuid, new_id, to_uuid


class Overdraft(Exception):
    """The transfer would break an account's balance rule; nothing was changed."""

    def __init__(self, account_id: str | None) -> None:
        super().__init__("an account's balance rule would be broken")
        self.account_id = account_id


@dataclass(frozen=True, slots=True)
class Totals:
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    @property
    def posted_credit_balance(self) -> int:
        """What the holder of a credit-normal account (a user's balance) owns, settled."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending


async def open_account(
    session: AsyncSession,
    *,
    program_id: str,
    currency: str,
    kind: str,
    owner_id: str | None,
    no_overdraft: bool,
) -> LedgerAccount:
    account = LedgerAccount(
        program_id=program_id,
        currency=currency,
        kind=kind,
        owner_id=owner_id,
        debits_must_not_exceed_credits=no_overdraft,
    )
    session.add(account)
    await session.flush()
    return account


async def system_account(
    session: AsyncSession, *, program_id: str, currency: str, kind: str
) -> LedgerAccount:
    """The program's account of `kind` in `currency` (funding, settlement, …), made on first
    use. System accounts may go either way: they stand for money outside the program."""
    cached = _SYSTEM_ACCOUNTS.get((program_id, currency, kind))
    if cached is not None:
        found = await session.get(LedgerAccount, cached)
        if found is not None:
            return found
    await session.execute(
        insert(LedgerAccount)
        .values(program_id=program_id, currency=currency, kind=kind, owner_id=None)
        .on_conflict_do_nothing(
            index_elements=["program_id", "currency", "kind"],
            index_where=LedgerAccount.owner_id.is_(None),
        )
    )
    system = await LedgerAccountRepository(session, program_id).system(currency, kind)
    assert system is not None  # inserted above, or there already
    account, settled = system
    if settled:
        # Made before this transaction began, so committed: it exists for good. One made in this
        # transaction (created_at is its start, now()) could still be rolled back.
        _SYSTEM_ACCOUNTS[(program_id, currency, kind)] = account.id
    return account


async def system_account_id(
    session: AsyncSession, *, program_id: str, currency: str, kind: str
) -> str:
    """The id of `system_account(...)`, without a round trip once this process has seen it."""
    cached = _SYSTEM_ACCOUNTS.get((program_id, currency, kind))
    if cached is not None:
        return cached
    return (await system_account(session, program_id=program_id, currency=currency, kind=kind)).id


async def totals(session: AsyncSession, account_id: str) -> Totals:
    """An account's totals, its unfolded deltas included."""
    unfolded = (
        select(
            *(
                func.coalesce(func.sum(getattr(LedgerAccountDelta, column)), 0).label(column)
                for column in TOTALS
            )
        )
        .where(LedgerAccountDelta.account_id == account_id)
        .subquery()
    )
    row = (
        await session.execute(
            select(*(getattr(LedgerAccount, c) + getattr(unfolded.c, c) for c in TOTALS))
            .select_from(LedgerAccount)
            .join(unfolded, text("true"))
            .where(LedgerAccount.id == account_id)
        )
    ).one()
    return Totals(*(int(value) for value in row))


TOTALS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")


@dataclass(frozen=True, slots=True)
class _Rules:
    currency: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool

    @property
    def buffered(self) -> bool:
        """No rule to keep: changes go to delta rows, not the account row."""
        return not (self.debits_must_not_exceed_credits or self.credits_must_not_exceed_debits)


# Immutable facts, so safe to keep for the life of the process: ids are never reused.
_RULES: dict[str, _Rules] = {}
_SYSTEM_ACCOUNTS: dict[tuple[str, str, str], str] = {}


async def _rules(session: AsyncSession, account_ids: list[str]) -> dict[str, _Rules]:
    missing = [a for a in account_ids if a not in _RULES]
    if missing:
        rows = await session.execute(
            select(
                LedgerAccount.id,
                LedgerAccount.currency,
                LedgerAccount.debits_must_not_exceed_credits,
                LedgerAccount.credits_must_not_exceed_debits,
            ).where(LedgerAccount.id.in_(missing))
        )
        for account_id, currency, debits_rule, credits_rule in rows:
            _RULES[account_id] = _Rules(currency, debits_rule, credits_rule)
    if any(a not in _RULES for a in account_ids):
        raise CardcoreError("NOT_FOUND", "No such ledger account.")
    return {a: _RULES[a] for a in account_ids}


# The rules themselves live in the database, in `ledger_apply` (see the migration
# 2026_12_03_authorization_functions): the authorization path's one write calls it too, so they
# are written once.
_APPLY = text(
    """
    SELECT debits_pending, debits_posted, credits_pending, credits_posted,
           debits_must_not_exceed_credits, credits_must_not_exceed_debits
    FROM ledger_apply(:account, :debits_pending, :debits_posted, :credits_pending,
                      :credits_posted, :currency, :allowance, :check)
    """
).bindparams(bindparam("account", type_=PrefixedId("lac")))


async def _update(
    session: AsyncSession,
    account_id: str,
    delta: dict[str, int],
    currency: str,
    overdraft_limit: int = 0,
    *,
    undo: bool = False,
) -> Totals | None:
    """Apply `delta` to an account of `currency` that has a rule, if its rules still hold: its
    new totals, or None (and nothing locked or changed) when it is not such an account or the
    rules would break. A change that takes nothing (a credit, a release) always keeps them; one
    that takes may take the account down to `-overdraft_limit`. An account's rules come back
    with it and are cached. An `undo` puts back a change just made, to totals that kept the
    rules, so it is not asked again (the CHECK constraints still are)."""
    returned = (
        await session.execute(
            _APPLY,
            {
                "account": account_id,
                **{column: delta.get(column, 0) for column in TOTALS},
                "currency": currency,
                "allowance": overdraft_limit,
                "check": not undo,
            },
        )
    ).one_or_none()
    if returned is None:
        return None
    _RULES.setdefault(account_id, _Rules(currency, *returned[4:]))
    return Totals(*returned[:4])


async def _run(
    session: AsyncSession,
    changes: dict[str, dict[str, int]],
    row: LedgerTransfer,
    overdraft_limits: dict[str, int] | None = None,
) -> LedgerTransfer:
    """Record the transfer, then move the totals; or raise Overdraft having changed nothing.

    The row goes in first, `ON CONFLICT DO NOTHING`: a unique name it carries (its `key`, or the
    one resolution of a pending transfer) is claimed before any total moves, so a racing twin
    waits for it and then finds it taken — the existing transfer for a key, 409
    TRANSFER_ALREADY_RESOLVED for a resolution — with its transaction still usable."""
    # Accounts this process knows are checked now; the others when their UPDATE finds nothing
    # (a user's balance, seen for the first time, costs no extra read that way).
    known = {a: _RULES[a] for a in changes if a in _RULES}
    if any(r.currency != row.currency for r in known.values()):
        raise CardcoreError("CURRENCY_MISMATCH")
    values = {c.key: getattr(row, c.key) for c in LedgerTransfer.__table__.columns}
    values.pop("created_at")
    values["id"] = values["id"] or new_id("ltr")
    # Parameters apart from the statement, so that its compiled form is cached.
    recorded = (
        await session.scalars(
            insert(LedgerTransfer).on_conflict_do_nothing().returning(LedgerTransfer), [values]
        )
    ).one_or_none()
    if recorded is None:
        if row.key is not None and (existing := await find_by_key(session, row.key)) is not None:
            return existing
        raise CardcoreError("TRANSFER_ALREADY_RESOLVED")
    moved: list[str] = []
    buffered = [a for a, r in known.items() if r.buffered]
    try:
        for account_id in sorted(a for a in changes if a not in buffered):
            if not any(changes[account_id].values()):
                continue
            after = await _update(
                session,
                account_id,
                changes[account_id],
                row.currency,
                (overdraft_limits or {}).get(account_id, 0),
            )
            if after is None:
                rules = (await _rules(session, [account_id]))[account_id]
                if rules.currency != row.currency:
                    raise CardcoreError("CURRENCY_MISMATCH")
                if not rules.buffered:
                    raise Overdraft(account_id)
                buffered.append(account_id)
                continue
            moved.append(account_id)
    except (Overdraft, CardcoreError):
        # Put back what moved: the caller's transaction goes on as if nothing was tried.
        for done in reversed(moved):
            await _update(
                session, done, {c: -d for c, d in changes[done].items()}, row.currency, undo=True
            )
        await session.execute(delete(LedgerTransfer).where(LedgerTransfer.id == recorded.id))
        session.expunge(recorded)
        raise
    deltas = [
        {"account_id": account_id, **dict.fromkeys(TOTALS, 0), **changes[account_id]}
        for account_id in buffered
        if any(changes[account_id].values())
    ]
    if deltas:
        await session.execute(insert(LedgerAccountDelta), deltas)
    return recorded


async def fold_deltas(session: AsyncSession, batch: int = 50_000) -> int:
    """Add unfolded deltas into their accounts, a batch at a time, in one statement: a delta is
    either still a row or already in its account, never both or neither. Returns how many."""
    folded = await session.execute(
        text(
            """
            WITH batch AS (
                DELETE FROM ledger_account_deltas WHERE id IN (
                    SELECT id FROM ledger_account_deltas ORDER BY id LIMIT :batch
                    FOR UPDATE SKIP LOCKED)
                RETURNING account_id, debits_pending, debits_posted, credits_pending,
                          credits_posted),
            sums AS (
                SELECT account_id, count(*) AS n, sum(debits_pending) AS dp,
                       sum(debits_posted) AS dq, sum(credits_pending) AS cp,
                       sum(credits_posted) AS cq
                FROM batch GROUP BY account_id),
            moved AS (
                UPDATE ledger_accounts a
                SET debits_pending = a.debits_pending + s.dp,
                    debits_posted = a.debits_posted + s.dq,
                    credits_pending = a.credits_pending + s.cp,
                    credits_posted = a.credits_posted + s.cq
                FROM sums s WHERE a.id = s.account_id
                RETURNING s.n)
            SELECT coalesce(sum(n), 0) FROM moved
            """
        ),
        {"batch": batch},
    )
    return int(folded.scalar_one())


async def find_by_key(session: AsyncSession, key: str) -> LedgerTransfer | None:
    return await session.scalar(select(LedgerTransfer).where(LedgerTransfer.key == key))


def new_transfer(
    *,
    program_id: str,
    debit_account_id: str,
    credit_account_id: str,
    amount: int,
    currency: str,
    code: str,
    pending: bool = False,
    timeout_at: datetime | None = None,
    key: str | None = None,
    details: dict[str, Any] | None = None,
    make: Callable[..., LedgerTransfer] = LedgerTransfer,
) -> LedgerTransfer:
    """A single or pending transfer's row, not yet recorded: `transfer` records it with its
    totals, the authorization path's one write (`authorizations/store.py`, whose plain rows
    `make` makes) with its own."""
    return make(
        id=new_id("ltr"),
        program_id=program_id,
        key=key,
        debit_account_id=debit_account_id,
        credit_account_id=credit_account_id,
        amount=amount,
        currency=currency,
        kind="pending" if pending else "single",
        code=code,
        pending_id=None,
        timeout_at=timeout_at if pending else None,
        details=details or {},
    )


async def transfer(
    session: AsyncSession,
    *,
    program_id: str,
    debit_account_id: str,
    credit_account_id: str,
    amount: int,
    currency: str,
    code: str,
    pending: bool = False,
    timeout_at: datetime | None = None,
    key: str | None = None,
    details: dict[str, Any] | None = None,
    overdraft_limit: int = 0,
) -> LedgerTransfer:
    """Move `amount` now (single) or hold it (pending). With `key`, a transfer already made
    under that key is returned instead of moving money again. `overdraft_limit` lets this one
    transfer take a ruled debit account down to minus that much (a fee a program allows to go
    below zero); every other transfer keeps it at zero or above."""
    if amount < 0:
        raise ValueError("amount must not be negative")
    if key is not None and (existing := await find_by_key(session, key)) is not None:
        return existing
    row = new_transfer(
        program_id=program_id,
        debit_account_id=debit_account_id,
        credit_account_id=credit_account_id,
        amount=amount,
        currency=currency,
        code=code,
        pending=pending,
        timeout_at=timeout_at,
        key=key,
        details=details,
    )
    return await _run(session, _moved(row), row, {debit_account_id: overdraft_limit})


async def _pending(session: AsyncSession, pending_id: str) -> LedgerTransfer:
    found = await session.scalar(
        select(LedgerTransfer).where(
            LedgerTransfer.id == pending_id, LedgerTransfer.kind == "pending"
        )
    )
    if found is None:
        raise CardcoreError("NOT_FOUND", "No such pending transfer.")
    return found


async def pending_transfers(session: AsyncSession, ids: list[str]) -> dict[str, LedgerTransfer]:
    """Pending transfers by id, for `Linked.resolve`."""
    found = await session.scalars(
        select(LedgerTransfer).where(LedgerTransfer.id.in_(ids), LedgerTransfer.kind == "pending")
    )
    return {t.id: t for t in found}


async def resolution_of(session: AsyncSession, pending_id: str) -> LedgerTransfer | None:
    return await session.scalar(
        select(LedgerTransfer).where(LedgerTransfer.pending_id == pending_id)
    )


def resolution(
    held: Any,
    *,
    kind: str,
    amount: int | None = None,
    code: str | None = None,
    details: dict[str, Any] | None = None,
    make: Callable[..., Any] = LedgerTransfer,
) -> tuple[Any, dict[str, dict[str, int]]]:
    """The row that posts (all or part: the rest is released), voids or expires the pending
    transfer `held`, and the totals it moves on each of its accounts."""
    if kind not in ("post", "void", "expire"):
        raise ValueError(kind)
    posted = 0
    if kind == "post":
        posted = held.amount if amount is None else amount
        if not 0 <= posted <= held.amount:
            raise CardcoreError(
                "VALIDATION_ERROR", "A pending transfer posts at most the amount it holds."
            )
    row = make(
        id=new_id("ltr"),
        program_id=held.program_id,
        key=None,
        debit_account_id=held.debit_account_id,
        credit_account_id=held.credit_account_id,
        amount=posted if kind == "post" else held.amount,
        currency=held.currency,
        kind=kind,
        code=code or held.code,
        pending_id=held.id,
        timeout_at=None,
        details=details or {},
    )
    return row, {
        held.debit_account_id: {"debits_pending": -held.amount, "debits_posted": posted},
        held.credit_account_id: {"credits_pending": -held.amount, "credits_posted": posted},
    }


async def resolve(
    session: AsyncSession,
    pending_id: str,
    *,
    kind: str,
    amount: int | None = None,
    code: str | None = None,
    details: dict[str, Any] | None = None,
) -> LedgerTransfer:
    """Post (all or part: the rest is released), void or expire a pending transfer. A pending
    transfer resolves exactly once: a second resolution is `409 TRANSFER_ALREADY_RESOLVED`,
    enforced by a unique index, so two racing resolutions cannot both win."""
    row, changes = resolution(
        await _pending(session, pending_id), kind=kind, amount=amount, code=code, details=details
    )
    return await _run(session, changes, row)


def _moved(row: Any) -> dict[str, dict[str, int]]:
    """What a single or pending transfer moves on its two accounts."""
    side = "pending" if row.kind == "pending" else "posted"
    return {
        row.debit_account_id: {f"debits_{side}": row.amount},
        row.credit_account_id: {f"credits_{side}": row.amount},
    }


class Linked:
    """Transfers that move together: all of them or, when a ruled account cannot pay its part,
    none (the refusing account is named). Built here, in Python; recorded in one statement by
    the database function `ledger_linked_write` (`apply`), or inside a caller's own write
    function, which calls it (see migrations/versions/2026_12_03_follow_up_functions.py). Each
    account's changes are checked in the order they were added, as one transfer after another
    would be; accounts are locked in id order."""

    def __init__(self) -> None:
        self.make = _PLAIN_TRANSFER
        self.transfers: list[Any] = []
        # (account, {column: change}, how far below zero this change may take the account)
        self.steps: list[tuple[str, dict[str, int], int]] = []

    def _add(self, row: Any, changes: dict[str, dict[str, int]], allowances: dict[str, int]) -> Any:
        self.transfers.append(row)
        for account_id, change in changes.items():
            if any(change.values()):
                self.steps.append((account_id, change, allowances.get(account_id, 0)))
        return row

    def transfer(self, *, overdraft_limit: int = 0, **fields: Any) -> Any:
        """A single or pending transfer (`new_transfer`'s fields); `overdraft_limit` as for
        `transfer`."""
        row = new_transfer(make=self.make, **fields)
        return self._add(row, _moved(row), {row.debit_account_id: overdraft_limit})

    def resolve(self, held: Any, **how: Any) -> Any:
        """Post, void or expire the pending transfer `held` (a row as read), as `resolution`."""
        row, changes = resolution(held, make=self.make, **how)
        return self._add(row, changes, {})

    def arrays(self) -> list[list[Any]]:
        """The steps as the database functions take them: accounts, the four totals' changes,
        allowances."""
        return [
            [to_uuid("lac", account) for account, _, _ in self.steps],
            *([change.get(c, 0) for _, change, _ in self.steps] for c in TOTALS),
            [allowance for _, _, allowance in self.steps],
        ]


_PLAIN_TRANSFER = plain(LedgerTransfer)
_LINKED_WRITE = (
    "SELECT account, refused FROM ledger_linked_write($1::jsonb, $2::uuid[], $3::bigint[],"
    " $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::varchar)"
)


async def apply(session: AsyncSession, moves: Linked) -> str | None:
    """Record linked transfers in the session's transaction: all of them, or none and the
    account (public id) that refused."""
    if not moves.transfers:
        return None
    connection = await driver_connection(session)
    rows = await connection.fetch(
        _LINKED_WRITE,
        to_json([as_row(t) for t in moves.transfers]),
        *moves.arrays(),
        moves.transfers[0].currency,
    )
    refused = next((r["account"] for r in rows if r["refused"]), None)
    return None if refused is None else from_uuid("lac", refused)
