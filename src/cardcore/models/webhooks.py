"""Webhook subscriptions, one message per (event, subscription), one row per delivery attempt."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    ARRAY,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt, Status
from cardcore.models.ids import PrefixedId, new_id


class WebhookMessageStatus(StrEnum):
    """Where a webhook message's delivery is: pending (not yet delivered; retried with backoff
    after a failed attempt), succeeded (the subscriber answered 2xx), or failed (every attempt
    failed, or the subscription was disabled); a redelivery makes it pending again."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookEndpoint(CreatedAt, Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(
        PrefixedId("whk"), primary_key=True, default=lambda: new_id("whk")
    )
    program_id: Mapped[str] = mapped_column(
        PrefixedId("prg"), ForeignKey("programs.id"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(500))
    # Exact types ("card.created") or prefixes ("card.*"); empty means every type.
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(100)), server_default="{}")
    enabled: Mapped[bool] = mapped_column(server_default="true")
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    # After a rotation the old secret signs too, until it expires, so receivers can switch over.
    previous_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None]
    # Since when every delivery has failed; cleared by any success.
    failing_since: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    deleted_at: Mapped[datetime | None]
    # Insertion time (see Event.created_at): events inserted after it are the subscription's.
    created_at: Mapped[datetime] = mapped_column(
        server_default=func.clock_timestamp(), nullable=False
    )


class WebhookMessage(CreatedAt, Base):
    """One event for one subscription: delivered at least once, retried on failure."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index(
            "ix_webhook_messages_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_webhook_messages_pending_order",
            "endpoint_id",
            "object_id",
            "event_id",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_messages_event_id", "event_id"),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("msg"), primary_key=True, default=lambda: new_id("msg")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    endpoint_id: Mapped[str] = mapped_column(PrefixedId("whk"), ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[str] = mapped_column(PrefixedId("evt"), ForeignKey("events.id"))
    object_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[WebhookMessageStatus] = mapped_column(
        Status(WebhookMessageStatus, 20), server_default="pending"
    )
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_attempt_at: Mapped[datetime | None]
    succeeded_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookAttempt(CreatedAt, Base):
    """One HTTP delivery attempt, kept for the delivery logs."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_endpoint_id_id", "endpoint_id", "id"),
        Index("ix_webhook_attempts_event_id_id", "event_id", "id"),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("wat"), primary_key=True, default=lambda: new_id("wat")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    message_id: Mapped[str] = mapped_column(
        PrefixedId("msg"), ForeignKey("webhook_messages.id"), index=True
    )
    endpoint_id: Mapped[str] = mapped_column(PrefixedId("whk"), ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[str] = mapped_column(PrefixedId("evt"), ForeignKey("events.id"))
    url: Mapped[str] = mapped_column(Text)
    success: Mapped[bool]
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    latency_ms: Mapped[int]
    response_snippet: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
