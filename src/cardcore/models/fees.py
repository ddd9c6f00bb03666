"""Fee schedules (versioned, per program and per product) and fee lines (one per fee charged,
held, waived or skipped). The money itself moves in the ledger; a fee line says why."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt, Status
from cardcore.models.ids import PrefixedId, new_id


class FeeStatus(StrEnum):
    """Where a fee line is."""

    HELD = "HELD"  # held with its card transaction, charged or released with it
    CHARGED = "CHARGED"
    WAIVED = "WAIVED"
    RELEASED = "RELEASED"  # its transaction's hold went away without charging it
    DUE = "DUE"  # not charged yet: new, or to be retried
    SKIPPED = "SKIPPED"  # the balance could not pay and the program's policy skips it


class FeeSchedule(CreatedAt, Base):
    """One version of the fees of a program (product_id NULL) or of one product, whose rules
    override the program's. Never updated: a change is a new version from its effective time,
    and a fee line keeps the version it was priced by."""

    __tablename__ = "fee_schedules"
    __table_args__ = (
        Index(
            "ix_fee_schedules_program_id_product_id_effective_from",
            "program_id",
            "product_id",
            "effective_from",
        ),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("fsc"), primary_key=True, default=lambda: new_id("fsc")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    product_id: Mapped[str | None] = mapped_column(
        PrefixedId("prd"), ForeignKey("card_products.id")
    )
    # 1, 2, … per program or product; numbered under the program's row lock (fees/schedules.py).
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[datetime]
    # The rules, as validated by fees/schemas.FeeRule.
    fees: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_by: Mapped[str | None] = mapped_column(String(64))


class Fee(CreatedAt, Base):
    """A fee line: what was (or would have been) charged, to which balance, for what, and what
    became of it. `key` names the fee's cause, so no cause is ever charged twice."""

    __tablename__ = "fees"
    __table_args__ = (
        Index("ix_fees_program_id_id", "program_id", "id"),
        Index("ix_fees_balance_id", "balance_id"),
        Index("ix_fees_card_id", "card_id"),
        Index("ix_fees_transaction_id", "transaction_id"),
        Index("ix_fees_money_transfer_id", "money_transfer_id"),
        Index("ix_fees_due", "next_attempt_at", postgresql_where=text("status = 'DUE'")),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("fee"), primary_key=True, default=lambda: new_id("fee")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(20))
    schedule_id: Mapped[str] = mapped_column(PrefixedId("fsc"), ForeignKey("fee_schedules.id"))
    # The schedule's rule that priced it, as it was: a clearing or increment reprices by it.
    rule: Mapped[dict[str, Any]] = mapped_column(JSONB)
    balance_id: Mapped[str] = mapped_column(PrefixedId("bal"), ForeignKey("balances.id"))
    card_id: Mapped[str | None] = mapped_column(PrefixedId("card"), ForeignKey("cards.id"))
    transaction_id: Mapped[str | None] = mapped_column(
        PrefixedId("txn"), ForeignKey("card_transactions.id")
    )
    money_transfer_id: Mapped[str | None] = mapped_column(
        PrefixedId("trf"), ForeignKey("money_transfers.id")
    )
    status: Mapped[FeeStatus] = mapped_column(Status(FeeStatus, 10))
    # The fee as priced (held, charged, or what a waiver spared), and what it was priced on.
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    basis_amount: Mapped[int | None] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # Periodic fees: the period charged for, [start, end) in the program's time zone.
    period: Mapped[str | None] = mapped_column(String(12))
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    # Why it was waived (the rule and what the ledger showed), or why it was not charged.
    waiver: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(String(200))
    # The hold (while HELD) or the charge.
    ledger_transfer_id: Mapped[str | None] = mapped_column(
        PrefixedId("ltr"), ForeignKey("ledger_transfers.id")
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    retry_until: Mapped[datetime | None]
    charged_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class FeeRefund(CreatedAt, Base):
    __tablename__ = "fee_refunds"

    id: Mapped[str] = mapped_column(
        PrefixedId("frf"), primary_key=True, default=lambda: new_id("frf")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    fee_id: Mapped[str] = mapped_column(PrefixedId("fee"), ForeignKey("fees.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(500))
    refunded_by: Mapped[str] = mapped_column(String(64))
    ledger_transfer_id: Mapped[str] = mapped_column(
        PrefixedId("ltr"), ForeignKey("ledger_transfers.id")
    )
