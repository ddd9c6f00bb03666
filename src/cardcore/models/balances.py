"""Balances (the money a user or corporation holds), partner balances, IBAN payment contacts and
outgoing transfers. Each balance is backed by one ledger account; amounts live only there."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt, Status
from cardcore.models.ids import PrefixedId, new_id


# The docstrings of these enums are the API's descriptions of them (OpenAPI); the transitions
# are in balances/service.py.
class BalanceStatus(StrEnum):
    """Where a balance is: ACTIVE; BLOCKED by its partner until unblocked (no card is issued on
    it or moved to it meanwhile); or CLOSED for good, which only an empty balance may be."""

    ACTIVE = "ACTIVE"
    BLOCKED = "BLOCKED"
    CLOSED = "CLOSED"


class TransferStatus(StrEnum):
    """Where a money transfer is: an internal one is COMPLETED at once; an external one (to an
    IBAN) is PENDING, its amount held, until the issuer's operations settle it COMPLETED or
    FAILED (the hold released)."""

    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class Balance(CreatedAt, Base):
    __tablename__ = "balances"
    __table_args__ = (Index("ix_balances_program_id_owner_id", "program_id", "owner_id"),)

    id: Mapped[str] = mapped_column(
        PrefixedId("bal"), primary_key=True, default=lambda: new_id("bal")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    owner_type: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[BalanceStatus] = mapped_column(
        Status(BalanceStatus, 20), server_default="ACTIVE"
    )
    ledger_account_id: Mapped[str] = mapped_column(
        PrefixedId("lac"), ForeignKey("ledger_accounts.id"), unique=True
    )
    closed_at: Mapped[datetime | None]


class PartnerBalance(CreatedAt, Base):
    __tablename__ = "partner_balances"
    __table_args__ = (UniqueConstraint("program_id", "type", "currency"),)

    id: Mapped[str] = mapped_column(
        PrefixedId("pbl"), primary_key=True, default=lambda: new_id("pbl")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    # CREDIT funds user reloads; DEPOSIT backs card spending (charged with every hold).
    type: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    ledger_account_id: Mapped[str] = mapped_column(
        PrefixedId("lac"), ForeignKey("ledger_accounts.id"), unique=True
    )
    low_balance_threshold: Mapped[int | None] = mapped_column(BigInteger)


class PaymentContact(CreatedAt, Base):
    __tablename__ = "payment_contacts"

    id: Mapped[str] = mapped_column(
        PrefixedId("pct"), primary_key=True, default=lambda: new_id("pct")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    user_id: Mapped[str] = mapped_column(PrefixedId("usr"), ForeignKey("users.id"), index=True)
    iban: Mapped[str] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    holder_name: Mapped[str] = mapped_column(String(140))


class MoneyTransfer(CreatedAt, Base):
    """A transfer a partner asked for: to an IBAN (external, settled by ops) or to another
    balance of the program (internal, immediate)."""

    __tablename__ = "money_transfers"
    __table_args__ = (Index("ix_money_transfers_source_balance_id_id", "source_balance_id", "id"),)

    id: Mapped[str] = mapped_column(
        PrefixedId("trf"), primary_key=True, default=lambda: new_id("trf")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    type: Mapped[str] = mapped_column(String(10))
    source_balance_id: Mapped[str] = mapped_column(PrefixedId("bal"), ForeignKey("balances.id"))
    destination_balance_id: Mapped[str | None] = mapped_column(
        PrefixedId("bal"), ForeignKey("balances.id")
    )
    payment_contact_id: Mapped[str | None] = mapped_column(
        PrefixedId("pct"), ForeignKey("payment_contacts.id")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[TransferStatus] = mapped_column(Status(TransferStatus, 20))
    reference: Mapped[str | None] = mapped_column(String(140))
    ledger_transfer_id: Mapped[str] = mapped_column(
        PrefixedId("ltr"), ForeignKey("ledger_transfers.id")
    )
    completed_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(500))
