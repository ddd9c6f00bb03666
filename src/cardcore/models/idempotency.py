"""Idempotency records: the stored answers to POSTs sent with an Idempotency-Key."""

from datetime import datetime

from sqlalchemy import BigInteger, Identity, Index, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt


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
