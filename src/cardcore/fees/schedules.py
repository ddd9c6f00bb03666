"""Fee schedules and pricing: the program's version in effect at the time, with the card
product's version (if any) overriding rules of the same type, form factor, period and channel;
a fee priced from them."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.fees.repository import ScheduleRepository
from cardcore.fees.schemas import FeeRule, FeeScheduleCreate
from cardcore.kit.errors import validation_error
from cardcore.models import (
    FeeSchedule,
    Program,
)
from cardcore.models.ids import from_uuid


async def create_schedule(
    session: AsyncSession, program_id: str, body: FeeScheduleCreate, actor: str | None
) -> FeeSchedule:
    """A new version of the program's (or a product's) schedule."""
    # Versions are numbered under the program's row lock: two at once cannot take one number.
    program = await session.get(Program, program_id, with_for_update=True)
    assert program is not None
    schedules = ScheduleRepository(session, program_id)
    if body.product_id is not None and not await schedules.names_a_product(body.product_id):
        raise validation_error("product_id", "NOT_FOUND", "No such product.")
    now = datetime.now(UTC)
    effective_from = body.effective_from or now
    if effective_from.tzinfo is None:
        raise validation_error("effective_from", "NO_TIME_ZONE", "Give a time zone offset.")
    if effective_from < now - timedelta(seconds=60):
        raise validation_error(
            "effective_from", "IN_THE_PAST", "A schedule cannot change fees retroactively."
        )
    for rule in body.fees:
        for currency in rule.prices:
            if currency not in program.currencies:
                raise validation_error(
                    "fees", "CURRENCY_NOT_ALLOWED", f"This program does not hold {currency}."
                )
    latest = await schedules.latest_version(body.product_id)
    schedule = FeeSchedule(
        program_id=program_id,
        product_id=body.product_id,
        version=latest + 1,
        effective_from=max(effective_from, now),
        fees=[rule.model_dump(mode="json", exclude_none=True) for rule in body.fees],
        created_by=actor,
    )
    session.add(schedule)
    await session.flush()
    return schedule


# A version never changes, so its parsed rules are kept by id for the life of the process.
_PARSED: dict[str, list[FeeRule]] = {}


def rules_of(schedule_id: str, fees: list[dict[str, Any]]) -> list[FeeRule]:
    parsed = _PARSED.get(schedule_id)
    if parsed is None:
        parsed = _PARSED[schedule_id] = [FeeRule.model_validate(f) for f in fees]
    return parsed


@dataclass(frozen=True, slots=True)
class Priced:
    """A fee as the schedule prices it."""

    type: str
    rule: FeeRule
    schedule_id: str
    amount: int
    currency: str
    basis: int | None


Versions = list[tuple[str, list[FeeRule]]]


# The versions in effect are chosen by `fee_versions_in_effect` in the database (migration
# 2026_12_03_authorization_functions), which the authorization path's one read calls too.
_IN_EFFECT = (
    text(
        "SELECT id, fees FROM fee_versions_in_effect(:program_id, :product_id, :at)"
        " ORDER BY product_id NULLS FIRST"
    )
    .bindparams(
        bindparam("program_id", type_=FeeSchedule.program_id.type),
        bindparam("product_id", type_=FeeSchedule.product_id.type),
    )
    .columns(id=FeeSchedule.id.type, fees=FeeSchedule.fees.type)
)


def parse_versions(value: list[Any] | None) -> Versions:
    """The versions as the authorization path's read returns them: [[id, fees], …], as JSON."""
    return [
        (schedule_id := from_uuid("fsc", uuid.UUID(raw_id)), rules_of(schedule_id, fees))
        for raw_id, fees in value or []
    ]


async def schedules_in_effect(
    session: AsyncSession, program_id: str, product_id: str | None, at: datetime
) -> Versions:
    """The program's version in effect at `at`, then the product's: (id, rules) each."""
    rows = await session.execute(
        _IN_EFFECT, {"program_id": program_id, "product_id": product_id, "at": at}
    )
    return [(row.id, rules_of(row.id, row.fees)) for row in rows]


def _matches(rule: FeeRule, type_: str, **narrowing: str | None) -> bool:
    if rule.type != type_:
        return False
    if rule.form_factor is not None and rule.form_factor != narrowing.get("form_factor"):
        return False
    return rule.period == narrowing.get("period") and rule.channel == narrowing.get("channel")


def pick_rule(
    versions: list[tuple[str, list[FeeRule]]], type_: str, **narrowing: str | None
) -> tuple[str, FeeRule] | None:
    """The rule pricing a fee: the product's over the program's, a form factor's own rule over
    the one for every card."""
    merged: dict[tuple[str, str | None, str | None, str | None], tuple[str, FeeRule]] = {}
    for schedule_id, rules in versions:  # the product's version comes last and overrides
        for rule in rules:
            merged[rule.identity] = (schedule_id, rule)
    found = [(s, r) for s, r in merged.values() if _matches(r, type_, **narrowing)]
    found.sort(key=lambda pair: pair[1].form_factor is None)
    return found[0] if found else None


def priced_from(
    versions: Versions, type_: str, currency: str, basis: int | None, **narrowing: str | None
) -> Priced | None:
    """The fee of `type_` in `currency` under `versions`, or None when there is none. A rule
    priced at 0 is None too: nothing to charge or waive."""
    picked = pick_rule(versions, type_, **narrowing)
    if picked is None:
        return None
    schedule_id, rule = picked
    price = rule.prices.get(currency)
    amount = price.fee_for(basis or 0) if price is not None else 0
    return Priced(rule.type, rule, schedule_id, amount, currency, basis) if amount > 0 else None


async def price(
    session: AsyncSession,
    *,
    program_id: str,
    product_id: str | None,
    type_: str,
    currency: str,
    basis: int | None = None,
    at: datetime | None = None,
    **narrowing: str | None,
) -> Priced | None:
    """`priced_from` the schedules in effect at `at` (now)."""
    versions = await schedules_in_effect(session, program_id, product_id, at or datetime.now(UTC))
    return priced_from(versions, type_, currency, basis, **narrowing)
