"""Card transactions: every authorization, approved or declined, and what happened to it after
(reversals, clearing). The money itself moves in the ledger; these rows say why."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt, Status
from cardcore.models.ids import PrefixedId, new_id


class TransactionStatus(StrEnum):
    """Where a card transaction is: its money held, moved, or never moved."""

    PENDING = "PENDING"  # authorized: the amount is held
    SETTLED = "SETTLED"  # cleared (or force posted): the money moved
    DECLINED = "DECLINED"
    REVERSED = "REVERSED"  # the whole hold released by the network
    EXPIRED = "EXPIRED"  # the hold released after the program's hold_expiry_days


class CardTransaction(CreatedAt, Base):
    __tablename__ = "card_transactions"
    __table_args__ = (
        Index("ix_card_transactions_program_id_card_id_id", "program_id", "card_id", "id"),
        Index("ix_card_transactions_program_id_balance_id_id", "program_id", "balance_id", "id"),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("txn"), primary_key=True, default=lambda: new_id("txn")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    card_id: Mapped[str] = mapped_column(PrefixedId("card"), ForeignKey("cards.id"))
    balance_id: Mapped[str] = mapped_column(PrefixedId("bal"), ForeignKey("balances.id"))
    user_id: Mapped[str | None] = mapped_column(PrefixedId("usr"))
    # AUTHORIZATION, or FORCE_POST: a clearing that arrived without an authorization.
    kind: Mapped[str] = mapped_column(String(20), server_default="AUTHORIZATION")
    status: Mapped[TransactionStatus] = mapped_column(Status(TransactionStatus, 20))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    held_amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    settled_amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    channel: Mapped[str] = mapped_column(String(10))
    entry_mode: Mapped[str] = mapped_column(String(12))
    merchant: Mapped[dict[str, Any]] = mapped_column(JSONB)
    response_code: Mapped[str] = mapped_column(String(4))
    decline_reason: Mapped[str | None] = mapped_column(String(100))
    authorization_code: Mapped[str | None] = mapped_column(String(6))
    hold_transfer_id: Mapped[str | None] = mapped_column(PrefixedId("ltr"))
    # Programs with a partner DEPOSIT balance charge it alongside the user's hold:
    # the account charged, and its own pending transfer while the hold stands.
    deposit_account_id: Mapped[str | None] = mapped_column(PrefixedId("lac"))
    deposit_hold_transfer_id: Mapped[str | None] = mapped_column(PrefixedId("ltr"))
    # What the balance is charged, in its own currency (after conversion when they differ).
    billing_amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    billing_currency: Mapped[str] = mapped_column(String(3), server_default="")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class CardTransactionEvent(CreatedAt, Base):
    """One network message about a transaction. `network_key` (the message's network ids) is
    unique: a retransmission finds its first answer instead of acting twice."""

    __tablename__ = "card_transaction_events"

    id: Mapped[str] = mapped_column(
        PrefixedId("tev"), primary_key=True, default=lambda: new_id("tev")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    transaction_id: Mapped[str] = mapped_column(
        PrefixedId("txn"), ForeignKey("card_transactions.id"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    network_key: Mapped[str] = mapped_column(String(200), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    ledger_transfer_id: Mapped[str | None] = mapped_column(PrefixedId("ltr"))


class FxRate(Base):
    """A rate ops maintain: 1 unit of `base` is `rate` units of `quote` (major units)."""

    __tablename__ = "fx_rates"

    program_id: Mapped[str] = mapped_column(
        PrefixedId("prg"), ForeignKey("programs.id"), primary_key=True
    )
    base: Mapped[str] = mapped_column(String(3), primary_key=True)
    quote: Mapped[str] = mapped_column(String(3), primary_key=True)
    rate: Mapped[Decimal] = mapped_column(Numeric(24, 10))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
