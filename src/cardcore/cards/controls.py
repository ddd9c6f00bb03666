"""Spend controls: `evaluate(card, transaction)`, the card's state and its controls.

A card's controls start as its product's defaults; the program's maxima bound every card (a
card limit above them is refused, and evaluation applies them in any case). An authorization is
decided by `cards/decision.decide`, which asks `evaluate()` first and then what the message
presented; the engine then calls `record_spend()`. Support staff call `evaluate()` as a dry run.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, cast
from zoneinfo import ZoneInfo

import pycountry
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards.lifecycle import LOCK_REASONS, expired
from cardcore.cards.response_codes import ResponseCode
from cardcore.kit.errors import CardcoreError, FieldError
from cardcore.kit.money import MAX_AMOUNT
from cardcore.models import Card, CardStatus, Program
from cardcore.models.ids import PrefixedId

Channel = Literal["POS", "ECOM", "ATM", "CONTACTLESS", "MAGSTRIPE", "MOTO", "INTERNATIONAL"]
LimitChannel = Literal["ALL", "POS", "ECOM", "ATM", "MOTO", "CONTACTLESS", "MAGSTRIPE"]
Period = Literal["transaction", "day", "week", "month", "year", "lifetime"]
PERIODS: tuple[str, ...] = ("day", "week", "month", "year", "lifetime")
_MCC = re.compile(r"^\d{4}(-\d{4})?$")
LIFETIME_START = datetime(1970, 1, 1, tzinfo=UTC)


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["amount", "count"]
    period: Period
    channel: LimitChannel = "ALL"
    value: int = Field(
        ge=0,
        le=MAX_AMOUNT,
        description="Minor units for amounts; a number for counts. At most 999,999,999,999.",
    )

    @model_validator(mode="after")
    def counts_have_periods(self) -> "Limit":
        if self.kind == "count" and self.period == "transaction":
            raise ValueError("a count limit needs a period longer than one transaction")
        return self

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.period, self.channel)


class ListRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["block", "allow"]
    codes: list[str] = Field(max_length=500)


class Controls(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: dict[Channel, bool] = Field(
        default_factory=dict, description="A channel not listed is enabled."
    )
    limits: list[Limit] = Field(default_factory=list, max_length=100)
    mcc: ListRule | None = Field(default=None, description="Codes `5411` or ranges `5812-5814`.")
    countries: ListRule | None = Field(default=None, description="ISO 3166-1 alpha-2 codes.")

    @field_validator("mcc")
    @classmethod
    def _mcc_codes(cls, rule: ListRule | None) -> ListRule | None:
        if rule is not None:
            bad = [str(n) for n, code in enumerate(rule.codes) if not _MCC.match(code)]
            if bad:
                # Positions, never the codes: whatever was sent may be a card number.
                raise ValueError(f"not MCCs or MCC ranges at positions {', '.join(bad)}")
        return rule

    @field_validator("countries")
    @classmethod
    def _country_codes(cls, rule: ListRule | None) -> ListRule | None:
        if rule is not None:
            codes = [code.upper() for code in rule.codes]
            bad = [
                str(n)
                for n, code in enumerate(codes)
                if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None
            ]
            if bad:
                raise ValueError(f"not ISO 3166-1 alpha-2 codes at positions {', '.join(bad)}")
            rule = ListRule(mode=rule.mode, codes=codes)
        return rule

    def enabled(self, channel: str) -> bool:
        # Any string may be asked: one that names no channel is not turned off.
        return self.channels.get(cast(Channel, channel), True)


def parse(raw: dict[str, Any] | None) -> Controls:
    return Controls.model_validate(raw or {})


def _mcc_in(mcc: str, codes: list[str]) -> bool:
    for code in codes:
        low, _, high = code.partition("-")
        if low <= mcc <= (high or low):
            return True
    return False


def check_program_maxima(controls: Controls, maxima: list[Any]) -> None:
    ceilings = {Limit.model_validate(m).key: Limit.model_validate(m).value for m in maxima}
    above = [
        FieldError(
            field="limits",
            code="LIMIT_ABOVE_PROGRAM_MAXIMUM",
            message=f"{limit.kind}/{limit.period}/{limit.channel} may be at most "
            f"{ceilings[limit.key]} in this program.",
        )
        for limit in controls.limits
        if limit.key in ceilings and limit.value > ceilings[limit.key]
    ]
    if above:
        raise CardcoreError(
            "VALIDATION_ERROR", "A limit is above the program's maximum.", errors=above
        )


def loosens(current: Controls, proposed: Controls) -> list[str]:
    """Everything in `proposed` that is less strict than `current` (empty: only tighter)."""
    problems = [
        f"channel {name} enabled"
        for name in ("POS", "ECOM", "ATM", "CONTACTLESS", "MAGSTRIPE", "MOTO", "INTERNATIONAL")
        if proposed.enabled(name) and not current.enabled(name)
    ]
    new_limits = {limit.key: limit.value for limit in proposed.limits}
    for limit in current.limits:
        if new_limits.get(limit.key, limit.value + 1) > limit.value:
            problems.append(f"limit {limit.kind}/{limit.period}/{limit.channel} raised or removed")
    for name in ("mcc", "countries"):
        before, after = getattr(current, name), getattr(proposed, name)
        if before is None:
            continue
        if after is None or after.mode != before.mode:
            problems.append(f"{name} list removed or changed mode")
        elif before.mode == "block" and not set(before.codes) <= set(after.codes):
            problems.append(f"{name} block list shortened")
        elif before.mode == "allow" and not set(after.codes) <= set(before.codes):
            problems.append(f"{name} allow list widened")
    return problems


# -- evaluation ----------------------------------------------------------------------------------


class CardState(Protocol):
    """What deciding needs of a card: a `Card` row, or the authorization path's raw read."""

    @property
    def status(self) -> str: ...
    @property
    def lock_reason(self) -> int | None: ...
    @property
    def controls(self) -> dict[str, Any]: ...
    @property
    def expiry_month(self) -> int: ...
    @property
    def expiry_year(self) -> int: ...


class ProgramRules(Protocol):
    """What deciding needs of a program: a `Program` row, or the authorization path's read."""

    timezone: str
    home_country: str | None
    control_maxima: list[Any]


@dataclass(frozen=True)
class Transaction:
    amount: int
    currency: str
    channel: str  # POS, ECOM, ATM, MOTO
    entry_mode: str  # CHIP, CONTACTLESS, MAGSTRIPE, MANUAL, ECOM
    mcc: str
    country: str


@dataclass(frozen=True)
class Decision:
    approved: bool
    response_code: ResponseCode
    rule: str | None = None

    @classmethod
    def approve(cls) -> "Decision":
        return cls(True, ResponseCode.APPROVED)

    @classmethod
    def decline(cls, code: ResponseCode, rule: str) -> "Decision":
        return cls(False, code, rule)


def period_starts(timezone: str, now: datetime) -> dict[str, datetime]:
    """When each counting period began, in the program's own time zone."""
    local = now.astimezone(ZoneInfo(timezone))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "day": day.astimezone(UTC),
        "week": (day - timedelta(days=day.weekday())).astimezone(UTC),
        "month": day.replace(day=1).astimezone(UTC),
        "year": day.replace(month=1, day=1).astimezone(UTC),
        "lifetime": LIFETIME_START,
    }


def _channels(transaction: Transaction, program: ProgramRules) -> list[str]:
    used = [transaction.channel]
    if transaction.entry_mode in ("CONTACTLESS", "MAGSTRIPE"):
        used.append(transaction.entry_mode)
    if program.home_country and transaction.country.upper() != program.home_country:
        used.append("INTERNATIONAL")
    return used


def status_decision(card: CardState, now: datetime) -> Decision | None:
    if card.status == CardStatus.EXPIRED or expired(card, now):
        return Decision.decline(ResponseCode.EXPIRED_CARD, "CARD_EXPIRED")
    if card.status == CardStatus.LOCKED:
        reason = LOCK_REASONS.get(card.lock_reason or 0)
        code = reason.iso_response if reason else ResponseCode.DO_NOT_HONOUR
        return Decision.decline(code, f"CARD_LOCKED_{reason.name if reason else 'UNKNOWN'}")
    if card.status == CardStatus.FROZEN:
        return Decision.decline(ResponseCode.DO_NOT_HONOUR, "CARD_FROZEN")
    if card.status != CardStatus.ACTIVE:
        return Decision.decline(ResponseCode.DO_NOT_HONOUR, f"CARD_{card.status}")
    return None


def evaluate(
    card: CardState,
    transaction: Transaction,
    *,
    program: ProgramRules,
    spent: dict[tuple[str, str], tuple[int, int]],
    now: datetime,
) -> Decision:
    """Approve or decline, with the ISO 8583 response code and the rule that declined.
    `spent` maps (channel or ALL, period) to (amount, count) so far in the current period."""
    status = status_decision(card, now)
    if status is not None:
        return status
    controls = parse(card.controls)
    for channel in _channels(transaction, program):
        if not controls.enabled(channel):
            return Decision.decline(
                ResponseCode.NOT_PERMITTED_TO_CARDHOLDER, f"CHANNEL_{channel}_DISABLED"
            )
    for name, value in (("countries", transaction.country.upper()), ("mcc", transaction.mcc)):
        rule = getattr(controls, name)
        if rule is None:
            continue
        listed = value in rule.codes if name == "countries" else _mcc_in(value, rule.codes)
        if (rule.mode == "block") == listed:
            return Decision.decline(
                ResponseCode.RESTRICTED_CARD,
                f"{name.upper()}_{'BLOCKED' if listed else 'NOT_ALLOWED'}",
            )
    limits = controls.limits + [Limit.model_validate(m) for m in program.control_maxima or []]
    for limit in sorted(limits, key=lambda item: item.kind):  # amounts (61) before counts (65)
        if limit.channel not in ("ALL", *_channels(transaction, program)):
            continue
        if limit.period == "transaction":
            if transaction.amount > limit.value:
                return Decision.decline(
                    ResponseCode.EXCEEDS_AMOUNT_LIMIT, f"AMOUNT_PER_TRANSACTION_{limit.channel}"
                )
            continue
        amount, count = spent.get((limit.channel, limit.period), (0, 0))
        if limit.kind == "amount" and amount + transaction.amount > limit.value:
            return Decision.decline(
                ResponseCode.EXCEEDS_AMOUNT_LIMIT,
                f"AMOUNT_PER_{limit.period.upper()}_{limit.channel}",
            )
        if limit.kind == "count" and count + 1 > limit.value:
            return Decision.decline(
                ResponseCode.EXCEEDS_FREQUENCY_LIMIT,
                f"COUNT_PER_{limit.period.upper()}_{limit.channel}",
            )
    return Decision.approve()


def spend_counters(card_id: str, timezone: str, now: datetime) -> TextClause:
    """The card's counters (channel, period, amount, count) for the periods running at `now`,
    through `card_spent` (the authorization path reads them with the same function)."""
    starts = period_starts(timezone, now)
    return _SPENT.bindparams(card_id=card_id, periods=list(starts), starts=list(starts.values()))


_SPENT = text(
    "SELECT channel, period, amount, count FROM card_spent(:card_id, :periods, :starts)"
).bindparams(bindparam("card_id", type_=PrefixedId("card")))


def as_spent(rows: Iterable[Sequence[Any]]) -> dict[tuple[str, str], tuple[int, int]]:
    return {(channel, period): (amount, count) for channel, period, amount, count in rows}


async def spent_so_far(
    session: AsyncSession, card: Card, program: Program, now: datetime
) -> dict[tuple[str, str], tuple[int, int]]:
    return as_spent(await session.execute(spend_counters(card.id, program.timezone, now)))


def spend_keys(
    transaction: Transaction, program: ProgramRules, starts: dict[str, datetime]
) -> tuple[list[str], list[str], list[datetime]]:
    """The counters an approved transaction adds to, as `card_spend_add` takes them: its channels
    (ALL, its channel, its entry mode where limits name one), and the periods with when each
    began (`period_starts`)."""
    channels = [c for c in ("ALL", *_channels(transaction, program)) if c != "INTERNATIONAL"]
    return channels, list(starts), list(starts.values())


async def record_spend(
    session: AsyncSession, card: Card, program: Program, transaction: Transaction, now: datetime
) -> None:
    """Add an approved transaction to the card's counters, in one statement (`card_spend_add`,
    which the authorization path's write calls too)."""
    channels, periods, starts = spend_keys(
        transaction, program, period_starts(program.timezone, now)
    )
    await session.execute(
        _ADD_SPEND,
        {
            "card_id": card.id,
            "channels": channels,
            "periods": periods,
            "starts": starts,
            "amount": transaction.amount,
        },
    )


_ADD_SPEND = text(
    "SELECT card_spend_add(:card_id, CAST(:channels AS varchar[]), CAST(:periods AS varchar[]),"
    " CAST(:starts AS timestamptz[]), :amount)"
).bindparams(bindparam("card_id", type_=PrefixedId("card")))
