"""The double-entry ledger, modelled on TigerBeetle.

An account keeps four running totals. A transfer moves an amount from one account (debit) to
another (credit) of the same currency, either at once (`single`) or in two phases: a `pending`
transfer reserves the amount (a hold), and exactly one later `post`, `void` or `expire` transfer
resolves it — exactly once, because `pending_id` is unique among resolutions. Transfers are never
updated or deleted. Balance rules are CHECK constraints, so no code path can break them.

Accounts with no balance rule (the program's system accounts: funding, card network, ...) take
part in nearly every operation, so their totals are not updated in place: each operation appends
a delta row, and `ledger.fold_deltas` adds them up into the account now and then. Their totals are
the row plus its unfolded deltas. Otherwise every card authorization of a program would queue on
one row lock until its commit.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt
from cardcore.models.ids import PrefixedId, new_id


class LedgerAccount(CreatedAt, Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 "
            "AND credits_posted >= 0",
            name="totals_not_negative",
        ),
        # The names below are what an overdraft error reports (see ledger/service.py).
        CheckConstraint(
            "NOT debits_must_not_exceed_credits "
            "OR debits_pending + debits_posted <= credits_posted + overdraft_limit",
            name="debits_must_not_exceed_credits",
        ),
        CheckConstraint("overdraft_limit >= 0", name="overdraft_limit_not_negative"),
        CheckConstraint(
            "NOT credits_must_not_exceed_debits "
            "OR credits_pending + credits_posted <= debits_posted",
            name="credits_must_not_exceed_debits",
        ),
        # System accounts (funding, settlement, ...) are one per program, currency and kind.
        Index(
            "uq_ledger_accounts_system",
            "program_id",
            "currency",
            "kind",
            unique=True,
            postgresql_where=text("owner_id IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("lac"), primary_key=True, default=lambda: new_id("lac")
    )
    program_id: Mapped[str] = mapped_column(
        PrefixedId("prg"), ForeignKey("programs.id"), index=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    # user_balance, corporate_balance, partner_credit, partner_deposit, funding, settlement, ...
    kind: Mapped[str] = mapped_column(String(30))
    # The balance (or other object) this account backs; NULL for the program's system accounts.
    owner_id: Mapped[str | None] = mapped_column(String(64))
    debits_pending: Mapped[int] = mapped_column(BigInteger, server_default="0")
    debits_posted: Mapped[int] = mapped_column(BigInteger, server_default="0")
    credits_pending: Mapped[int] = mapped_column(BigInteger, server_default="0")
    credits_posted: Mapped[int] = mapped_column(BigInteger, server_default="0")
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(server_default="false")
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(server_default="false")
    # How far debits may exceed credits after all. Only a transfer that says so may use it (a fee
    # a program lets go below zero, ledger/service.py), and such a transfer raises it to what it
    # was allowed: so the CHECK above stays a backstop for every account.
    overdraft_limit: Mapped[int] = mapped_column(BigInteger, server_default="0")


class LedgerTransfer(CreatedAt, Base):
    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
        CheckConstraint(
            "(kind IN ('single', 'pending')) = (pending_id IS NULL)", name="resolution_has_pending"
        ),
        UniqueConstraint("pending_id"),
        Index("ix_ledger_transfers_debit_account_id_id", "debit_account_id", "id"),
        Index("ix_ledger_transfers_credit_account_id_id", "credit_account_id", "id"),
        Index(
            "ix_ledger_transfers_pending_timeout",
            "timeout_at",
            postgresql_where=text("kind = 'pending' AND timeout_at IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("ltr"), primary_key=True, default=lambda: new_id("ltr")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    # The caller's (or the operation's) unique name for this transfer: a retry finds it again.
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    debit_account_id: Mapped[str] = mapped_column(
        PrefixedId("lac"), ForeignKey("ledger_accounts.id")
    )
    credit_account_id: Mapped[str] = mapped_column(
        PrefixedId("lac"), ForeignKey("ledger_accounts.id")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # single | pending | post | void | expire
    kind: Mapped[str] = mapped_column(String(10))
    # What the money movement is, for statements: reload, transfer, card_authorization, fee, ...
    code: Mapped[str] = mapped_column(String(40))
    pending_id: Mapped[str | None] = mapped_column(
        PrefixedId("ltr"), ForeignKey("ledger_transfers.id")
    )
    timeout_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class LedgerAccountDelta(Base):
    """A change to the totals of an account without balance rules, not yet folded into it (see the
    module docstring). No foreign key on purpose: checking one would share-lock the hot account
    row on every insert; the ledger only writes deltas for accounts it has just looked up."""

    __tablename__ = "ledger_account_deltas"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    account_id: Mapped[str] = mapped_column(PrefixedId("lac"), index=True)
    debits_pending: Mapped[int] = mapped_column(BigInteger, server_default="0")
    debits_posted: Mapped[int] = mapped_column(BigInteger, server_default="0")
    credits_pending: Mapped[int] = mapped_column(BigInteger, server_default="0")
    credits_posted: Mapped[int] = mapped_column(BigInteger, server_default="0")
