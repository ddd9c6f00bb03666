"""Programs (the tenants), their API keys and their ops staff."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ARRAY, CheckConstraint, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt, Status
from cardcore.models.ids import PrefixedId, new_id


class ProgramMode(StrEnum):
    """Live programs move real money; test programs (the sandbox) move play money and may drive
    the simulation routes. Fixed when the program is made (a trigger refuses a change), and
    every credential's secret starts with it: `ck_live_…`, `ck_test_…`."""

    LIVE = "live"
    TEST = "test"


class ProgramStatus(StrEnum):
    """Whether a program works: ACTIVE, or SUSPENDED, when none of its credentials, cardholder
    sessions or ops staff are let in."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class Program(CreatedAt, Base):
    """One issuing partner: everything it owns carries its `program_id`."""

    __tablename__ = "programs"
    __table_args__ = (CheckConstraint("mode IN ('live', 'test')", name="mode_known"),)

    id: Mapped[str] = mapped_column(
        PrefixedId("prg"), primary_key=True, default=lambda: new_id("prg")
    )
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[ProgramStatus] = mapped_column(
        Status(ProgramStatus, 20), server_default="ACTIVE"
    )
    mode: Mapped[str] = mapped_column(String(4), server_default=ProgramMode.LIVE.value)
    currencies: Mapped[list[str]] = mapped_column(ARRAY(String(3)), server_default="{}")
    # The program's own day, week and month for spend limits (IANA zone name).
    timezone: Mapped[str] = mapped_column(String(50), server_default="UTC")
    # Two-letter country where the program issues; anything else is INTERNATIONAL.
    home_country: Mapped[str | None] = mapped_column(String(2))
    # Spend limits no card of the program may exceed (same shape as a card's `limits`).
    control_maxima: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    # A card moves to another balance only when its program allows it.
    allow_card_balance_change: Mapped[bool] = mapped_column(server_default="false")
    # Added to every converted amount, in basis points (100 = 1 %).
    fx_markup_bps: Mapped[int] = mapped_column(server_default="0")
    # Pending authorizations are released after this many days (the hold-expiry job).
    hold_expiry_days: Mapped[int] = mapped_column(server_default="7")
    # How far a clearing may exceed its hold, per MCC, in basis points (tips at restaurants);
    # merged over the built-in table in authorizations/follow_ups.py.
    clearing_tolerances: Mapped[dict[str, int]] = mapped_column(JSONB, server_default="{}")
    # What happens to a fee the balance cannot pay (fees/service.py): SKIP it, RETRY it daily
    # for fee_retry_days, or ALLOW_NEGATIVE: take the balance below zero, at most this much per
    # currency (minor units).
    fee_shortfall_policy: Mapped[str] = mapped_column(String(20), server_default="SKIP")
    fee_retry_days: Mapped[int] = mapped_column(server_default="3")
    fee_overdraft_limits: Mapped[dict[str, int]] = mapped_column(JSONB, server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class ApiKey(CreatedAt, Base):
    """A partner credential. Only a SHA-256 of the key is kept: keys are 256 random bits, so the
    hash cannot be reversed by guessing, and a database leak does not leak working keys."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(
        PrefixedId("key"), primary_key=True, default=lambda: new_id("key")
    )
    program_id: Mapped[str] = mapped_column(
        PrefixedId("prg"), ForeignKey("programs.id"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), server_default="partner")
    secret_hash: Mapped[bytes] = mapped_column(unique=True)
    # The first characters of the key (`ck_live_a1b2`), so a person can tell keys apart.
    display_prefix: Mapped[str] = mapped_column(String(20))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AdminUser(CreatedAt, Base):
    """The issuer's ops staff for one program."""

    __tablename__ = "admin_users"
    __table_args__ = (UniqueConstraint("program_id", "email"),)

    id: Mapped[str] = mapped_column(
        PrefixedId("adm"), primary_key=True, default=lambda: new_id("adm")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(server_default="true")
    failed_logins: Mapped[int] = mapped_column(server_default="0")
    locked_until: Mapped[datetime | None]
