"""The job queue the worker runs: background work, retries and periodic jobs."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, SmallInteger, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt, Status


class JobStatus(StrEnum):
    """Where a job is: pending (waiting for its time, or retried after a failure), done, or
    failed (its attempts used up). Finished jobs are kept a week."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class Job(CreatedAt, Base):
    """A unit of background work: run once, retried with backoff, or scheduled for later.
    Periodic jobs get one row per period through `unique_key`, so however many workers run,
    each period runs once."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "run_at", postgresql_where=text("status = 'pending'")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    status: Mapped[JobStatus] = mapped_column(Status(JobStatus, 20), server_default="pending")
    run_at: Mapped[datetime] = mapped_column(server_default=func.now())
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    max_attempts: Mapped[int] = mapped_column(SmallInteger, server_default="10")
    last_error: Mapped[str | None] = mapped_column(Text)
    unique_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    finished_at: Mapped[datetime | None]
