"""The audit trail: every mutating request, who made it and how it ended."""

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt
from cardcore.models.ids import PrefixedId, new_id


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
