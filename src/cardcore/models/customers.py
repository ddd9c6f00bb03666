"""Cardholders (users) with their KYC, corporations with their KYB, identity documents, and the
history of every verification decision."""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt, Status
from cardcore.models.ids import PrefixedId, new_id


# The docstring is the API's description (OpenAPI); the transitions are in
# customers/verification.py.
class VerificationStatus(StrEnum):
    """Where a user's KYC or a corporation's KYB is."""

    NOT_STARTED = "NOT_STARTED"
    PENDING = "PENDING"
    IN_REVIEW = "IN_REVIEW"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class CustomerStatus(StrEnum):
    """Whether a user or a corporation is still a customer: ACTIVE, or CLOSED for good (the
    record stays, for history; a closed user gets no new balance, card or session)."""

    ACTIVE = "ACTIVE"
    CLOSED = "CLOSED"


class User(CreatedAt, Base):
    """An individual cardholder. The national id number is personal data that must be
    searchable: it is kept encrypted, with a keyed hash for lookups and its last four digits for
    display, never in clear."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("program_id", "external_reference"),
        Index("ix_users_program_id_national_id_hash", "program_id", "national_id_hash"),
        # Emails are compared case-insensitively: lookups use lower(email).
        Index("ix_users_program_id_email_lower", "program_id", func.lower(text("email"))),
        Index("ix_users_program_id_phone", "program_id", "phone"),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("usr"), primary_key=True, default=lambda: new_id("usr")
    )
    program_id: Mapped[str] = mapped_column(
        PrefixedId("prg"), ForeignKey("programs.id"), index=True
    )
    status: Mapped[CustomerStatus] = mapped_column(
        Status(CustomerStatus, 20), server_default="ACTIVE"
    )
    external_reference: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))
    kyc_status: Mapped[VerificationStatus] = mapped_column(
        Status(VerificationStatus, 20), server_default="NOT_STARTED"
    )
    kyc_reason: Mapped[str | None] = mapped_column(String(500))
    first_name: Mapped[str | None] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date | None]
    nationality: Mapped[str | None] = mapped_column(String(2))
    national_id_type: Mapped[str | None] = mapped_column(String(30))
    national_id_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    national_id_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    national_id_last4: Mapped[str | None] = mapped_column(String(4))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    closed_at: Mapped[datetime | None]


class Address(CreatedAt, Base):
    __tablename__ = "addresses"

    id: Mapped[str] = mapped_column(
        PrefixedId("adr"), primary_key=True, default=lambda: new_id("adr")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    user_id: Mapped[str] = mapped_column(PrefixedId("usr"), ForeignKey("users.id"), index=True)
    type: Mapped[str] = mapped_column(String(20))
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    state: Mapped[str | None] = mapped_column(String(10))
    country: Mapped[str] = mapped_column(String(2))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Corporation(CreatedAt, Base):
    __tablename__ = "corporations"
    __table_args__ = (UniqueConstraint("program_id", "country", "registration_number"),)

    id: Mapped[str] = mapped_column(
        PrefixedId("cor"), primary_key=True, default=lambda: new_id("cor")
    )
    program_id: Mapped[str] = mapped_column(
        PrefixedId("prg"), ForeignKey("programs.id"), index=True
    )
    legal_name: Mapped[str] = mapped_column(String(200))
    registration_number: Mapped[str] = mapped_column(String(50))
    country: Mapped[str] = mapped_column(String(2))
    address_line1: Mapped[str] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    state: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[CustomerStatus] = mapped_column(
        Status(CustomerStatus, 20), server_default="ACTIVE"
    )
    kyb_status: Mapped[VerificationStatus] = mapped_column(
        Status(VerificationStatus, 20), server_default="NOT_STARTED"
    )
    kyb_reason: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class CorporationEmployee(CreatedAt, Base):
    __tablename__ = "corporation_employees"

    corporation_id: Mapped[str] = mapped_column(
        PrefixedId("cor"), ForeignKey("corporations.id"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        PrefixedId("usr"), ForeignKey("users.id"), primary_key=True, index=True
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    title: Mapped[str | None] = mapped_column(String(100))


class KycDocument(CreatedAt, Base):
    """An uploaded identity document. The bytes live in document storage (encrypted), never in
    this row; the SHA-256 proves which bytes were reviewed."""

    __tablename__ = "kyc_documents"
    __table_args__ = (Index("ix_kyc_documents_subject", "subject_type", "subject_id"),)

    id: Mapped[str] = mapped_column(
        PrefixedId("doc"), primary_key=True, default=lambda: new_id("doc")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(30))
    side: Mapped[str | None] = mapped_column(String(10))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(Text)


class VerificationHistory(CreatedAt, Base):
    """Every KYC or KYB status change: from, to, why, and who decided."""

    __tablename__ = "verification_history"
    __table_args__ = (Index("ix_verification_history_subject", "subject_type", "subject_id", "id"),)

    id: Mapped[str] = mapped_column(
        PrefixedId("vhs"), primary_key=True, default=lambda: new_id("vhs")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[VerificationStatus] = mapped_column(Status(VerificationStatus, 20))
    to_status: Mapped[VerificationStatus] = mapped_column(Status(VerificationStatus, 20))
    reason: Mapped[str | None] = mapped_column(String(500))
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(64))
