"""Tables of the shared machinery: the event outbox, the audit trail, idempotency records."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt
from cardcore.models.ids import PrefixedId, new_id


class Event(CreatedAt, Base):
    """The outbox: written in the same transaction as the change it describes, so a committed
    change always has its event and a rolled-back one never does. Webhook delivery reads it."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_program_id_type_id", "program_id", "type", "id"),
        Index("ix_events_undispatched", "id", postgresql_where=text("dispatched_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("evt"), primary_key=True, default=lambda: new_id("evt")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    type: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    object_id: Mapped[str | None] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(String(128))
    # When webhook fan-out turned this event into messages; NULL until then.
    dispatched_at: Mapped[datetime | None]
    # The moment of insertion, not the start of its transaction (now()): fan-out compares it
    # with a subscription's creation to decide whether the subscription gets the event.
    created_at: Mapped[datetime] = mapped_column(
        server_default=func.clock_timestamp(), nullable=False
    )


class AuditLog(CreatedAt, Base):
    """Who did what, to which object, through which request, and how it ended."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_program_id_id", "program_id", "id"),)

    id: Mapped[str] = mapped_column(
        PrefixedId("aud"), primary_key=True, default=lambda: new_id("aud")
    )
    program_id: Mapped[str | None] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    object_id: Mapped[str | None] = mapped_column(String(64), index=True)
    request_id: Mapped[str | None] = mapped_column(String(128), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    error_code: Mapped[str | None] = mapped_column(String(64))


class IdempotencyRecord(CreatedAt, Base):
    """The stored answer to a POST sent with an Idempotency-Key, written in the same transaction
    as the effects of that POST: either both are committed or neither is."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        Index("ix_idempotency_records_expires_at", "expires_at"),
        Index("uq_idempotency_records_scope_key", "scope", "key", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # The program's id, or another caller's scope once other principals exist.
    scope: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    status_code: Mapped[int] = mapped_column(SmallInteger)
    response_body: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime]
