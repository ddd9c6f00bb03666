from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pycountry
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from cardcore.cards.controls import Limit
from cardcore.kit.money import CurrencyCode, MinorUnits

RoleName = Literal["admin", "manager", "employee"]


class AdminLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    program_id: str = Field(examples=["prg_01jd3z8k1m2n3p4q5r6s7t8v9w"])
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class AdminOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    role: str
    active: bool
    created_at: datetime


class AdminToken(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    admin: AdminOut


class AdminCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=12, max_length=1024)
    role: RoleName


class AdminUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: RoleName | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class NetworkKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["processor"])


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    actor_type: str
    actor_id: str | None
    channel: str
    action: str
    method: str
    path: str
    object_id: str | None
    request_id: str | None
    outcome: str = Field(description="success, failure, replayed or error.")
    status_code: int
    error_code: str | None
    created_at: datetime


_MCC = r"^\d{4}$"


class ProgramSettingsUpdate(BaseModel):
    """The program's own rules. Fields left out are not changed."""

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(
        default=None, max_length=50, description="IANA zone: the program's day, week and month."
    )
    home_country: str | None = Field(
        default=None, min_length=2, max_length=2, description="Elsewhere is INTERNATIONAL."
    )
    control_maxima: list[Limit] | None = Field(
        default=None, max_length=100, description="Limits no card of the program may exceed."
    )
    allow_card_balance_change: bool | None = None
    fx_markup_bps: int | None = Field(default=None, ge=0, le=2_000)
    hold_expiry_days: int | None = Field(default=None, ge=1, le=30)
    clearing_tolerances: (
        dict[
            Annotated[str, StringConstraints(pattern=_MCC)], Annotated[int, Field(ge=0, le=10_000)]
        ]
        | None
    ) = Field(
        default=None,
        description="Per MCC, how far a clearing may exceed its hold, in basis points "
        "(0–10,000); merged over the built-in table.",
    )
    fee_shortfall_policy: Literal["SKIP", "RETRY", "ALLOW_NEGATIVE"] | None = Field(
        default=None,
        description="A one-off or periodic fee the balance cannot pay: SKIP it, RETRY it daily"
        " for fee_retry_days, or ALLOW_NEGATIVE: take the balance below zero, at most"
        " fee_overdraft_limits[currency] (then SKIP).",
    )
    fee_retry_days: int | None = Field(default=None, ge=1, le=60)
    fee_overdraft_limits: dict[CurrencyCode, MinorUnits] | None = Field(
        default=None, description="Per currency, how far a fee may take a balance below zero."
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("not an IANA time zone") from None
        return value

    @field_validator("home_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.upper()
            if pycountry.countries.get(alpha_2=value) is None:
                raise ValueError("not an ISO 3166-1 alpha-2 code")
        return value


class ProgramSettings(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    timezone: str
    home_country: str | None
    control_maxima: list[Limit]
    allow_card_balance_change: bool
    fx_markup_bps: int
    hold_expiry_days: int
    clearing_tolerances: dict[str, int]
    fee_shortfall_policy: str
    fee_retry_days: int
    fee_overdraft_limits: dict[str, int]
