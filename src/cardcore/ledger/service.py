"""Ledger operations. No routes: balances, reloads, transfers and card authorizations use these.

Every operation changes account totals with `UPDATE … SET x = x + :amount`, one account after
the other in id order. The UPDATE takes the row lock, the fixed order means two operations on the
same pair of accounts can never deadlock, and the CHECK constraints are evaluated on the new
totals: an overdraft is refused by PostgreSQL itself, whatever code path tried it. Each operation
runs in a savepoint, so a refusal leaves the caller's transaction usable.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.errors import CardcoreError
from cardcore.models import LedgerAccount, LedgerTransfer

OVERDRAFT_CONSTRAINTS = (
    "ck_ledger_accounts_debits_must_not_exceed_credits",
    "ck_ledger_accounts_credits_must_not_exceed_debits",
)


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
    await session.execute(
        insert(LedgerAccount)
        .values(program_id=program_id, currency=currency, kind=kind, owner_id=None)
        .on_conflict_do_nothing(
            index_elements=["program_id", "currency", "kind"],
            index_where=LedgerAccount.owner_id.is_(None),
        )
    )
    account = await session.scalar(
        select(LedgerAccount).where(
            LedgerAccount.program_id == program_id,
            LedgerAccount.currency == currency,
            LedgerAccount.kind == kind,
            LedgerAccount.owner_id.is_(None),
        )
    )
    assert account is not None
    return account


async def totals(session: AsyncSession, account_id: str) -> Totals:
    row = (
        await session.execute(
            select(
                LedgerAccount.debits_pending,
                LedgerAccount.debits_posted,
                LedgerAccount.credits_pending,
                LedgerAccount.credits_posted,
            )
            .where(LedgerAccount.id == account_id)
            .execution_options(populate_existing=True)
        )
    ).one()
    return Totals(*row)


def _constraint(exc: IntegrityError) -> str | None:
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if name:
            return str(name)
    return None


async def _apply(session: AsyncSession, changes: dict[str, dict[str, int]]) -> None:
    """Add to account totals, in account id order (see the module docstring)."""
    for account_id in sorted(changes):
        values = {
            column: getattr(LedgerAccount, column) + delta
            for column, delta in changes[account_id].items()
            if delta
        }
        if values:
            await session.execute(
                update(LedgerAccount)
                .where(LedgerAccount.id == account_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )


async def _run(
    session: AsyncSession, changes: dict[str, dict[str, int]], row: LedgerTransfer
) -> LedgerTransfer:
    """Insert the transfer, then move the totals. The row goes first so that a unique key (the
    transfer's own `key`, or the one resolution of a pending transfer) is claimed before any
    total moves: a racing twin waits on it, then fails cleanly instead of double-counting."""
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
            await _apply(session, changes)
    except IntegrityError as exc:
        constraint = _constraint(exc)
        if constraint in OVERDRAFT_CONSTRAINTS:
            raise Overdraft(None) from exc
        if constraint == "uq_ledger_transfers_pending_id":
            raise CardcoreError("TRANSFER_ALREADY_RESOLVED") from exc
        if constraint == "uq_ledger_transfers_key" and row.key is not None:
            existing = await find_by_key(session, row.key)
            if existing is not None:
                return existing
        raise
    return row


async def _account_currency(session: AsyncSession, *account_ids: str) -> set[str]:
    rows = await session.scalars(
        select(LedgerAccount.currency).where(LedgerAccount.id.in_(account_ids))
    )
    return set(rows)


async def find_by_key(session: AsyncSession, key: str) -> LedgerTransfer | None:
    return await session.scalar(select(LedgerTransfer).where(LedgerTransfer.key == key))


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
) -> LedgerTransfer:
    """Move `amount` now (single) or hold it (pending). With `key`, a transfer already made
    under that key is returned instead of moving money again."""
    if amount < 0:
        raise ValueError("amount must not be negative")
    if key is not None and (existing := await find_by_key(session, key)) is not None:
        return existing
    if await _account_currency(session, debit_account_id, credit_account_id) != {currency}:
        raise CardcoreError("CURRENCY_MISMATCH")
    side = "pending" if pending else "posted"
    row = LedgerTransfer(
        program_id=program_id,
        key=key,
        debit_account_id=debit_account_id,
        credit_account_id=credit_account_id,
        amount=amount,
        currency=currency,
        kind="pending" if pending else "single",
        code=code,
        timeout_at=timeout_at if pending else None,
        details=details or {},
    )
    return await _run(
        session,
        {
            debit_account_id: {f"debits_{side}": amount},
            credit_account_id: {f"credits_{side}": amount},
        },
        row,
    )


async def _pending(session: AsyncSession, pending_id: str) -> LedgerTransfer:
    found = await session.scalar(
        select(LedgerTransfer).where(
            LedgerTransfer.id == pending_id, LedgerTransfer.kind == "pending"
        )
    )
    if found is None:
        raise CardcoreError("NOT_FOUND", "No such pending transfer.")
    return found


async def resolution_of(session: AsyncSession, pending_id: str) -> LedgerTransfer | None:
    return await session.scalar(
        select(LedgerTransfer).where(LedgerTransfer.pending_id == pending_id)
    )


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
    if kind not in ("post", "void", "expire"):
        raise ValueError(kind)
    held = await _pending(session, pending_id)
    posted = 0
    if kind == "post":
        posted = held.amount if amount is None else amount
        if not 0 <= posted <= held.amount:
            raise CardcoreError(
                "VALIDATION_ERROR", "A pending transfer posts at most the amount it holds."
            )
    row = LedgerTransfer(
        program_id=held.program_id,
        debit_account_id=held.debit_account_id,
        credit_account_id=held.credit_account_id,
        amount=posted if kind == "post" else held.amount,
        currency=held.currency,
        kind=kind,
        code=code or held.code,
        pending_id=held.id,
        details=details or {},
    )
    return await _run(
        session,
        {
            held.debit_account_id: {"debits_pending": -held.amount, "debits_posted": posted},
            held.credit_account_id: {"credits_pending": -held.amount, "credits_posted": posted},
        },
        row,
    )
