"""The event outbox: what happened, written with the change it describes."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, SmallInteger, String, func, text
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
