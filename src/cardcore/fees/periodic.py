"""Periodic card fees (daily, weekly, monthly) and the retry of fees waiting for funds.

A periodic fee is charged in arrears, once the period has ended in the program's time zone: so a
waiver that looks at the period (spend, number of purchases) sees all of it. The rule is the
schedule's in effect when the period ended (when the fee fell due). Each card and period gets
one fee line, keyed `CARD_PERIODIC|card_…|<period>` — unique, so running the job twice, or two
workers at once, or again after a crash, charges once. Closed, expired and replaced cards are
not charged; a card made before the period ended pays for the whole period (or is waived).
"""

from calendar import monthrange
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cardcore.fees import repository, schedules, service
from cardcore.fees.schemas import FeeRule
from cardcore.models import Card, LedgerTransfer, Program

PERIODS = ("DAILY", "WEEKLY", "MONTHLY")
# How many ended periods back the job looks: a period the job did not run for (workers down for a
# day) is charged late rather than never.
CATCH_UP = {"DAILY": 7, "WEEKLY": 4, "MONTHLY": 2}
BATCH = 2_000  # fee lines per job run
# Ledger codes of a card's spending from its balance: settled purchases, and refunds back.
SPEND_CODES = ("card_clearing", "card_force_post")
REFUND_CODE = "card_refund"


def last_period(kind: str, now: datetime, zone: str) -> tuple[str, datetime, datetime]:
    """The most recent whole period of `kind` before `now` in `zone`: its label and its UTC
    [start, end)."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    if kind == "DAILY":
        first = today - timedelta(days=1)
        label, following = first.isoformat(), today
    elif kind == "WEEKLY":
        this_monday = today - timedelta(days=today.weekday())
        first = this_monday - timedelta(days=7)
        year, week, _ = first.isocalendar()
        label, following = f"{year}-W{week:02d}", this_monday
    else:
        this_month = today.replace(day=1)
        first = (this_month - timedelta(days=1)).replace(day=1)
        label, following = f"{first:%Y-%m}", this_month
    return label, _midnight(first, tz), _midnight(following, tz)


def recent_periods(kind: str, now: datetime, zone: str) -> list[tuple[str, datetime, datetime]]:
    """The last CATCH_UP[kind] whole periods before `now`, oldest first."""
    periods = []
    for _ in range(CATCH_UP[kind]):
        periods.append(last_period(kind, now, zone))
        now = periods[-1][1]
    return periods[::-1]


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def month_later(moment: datetime) -> datetime:
    """The same time a calendar month later (Jan 31 → Feb 28 or 29)."""
    year, month = (moment.year, moment.month + 1) if moment.month < 12 else (moment.year + 1, 1)
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


async def _spend(
    session: AsyncSession, account_id: str, start: datetime, end: datetime
) -> tuple[int, int]:
    """From the ledger: the balance's settled card spending in [start, end) less card refunds,
    and how many purchases settled."""
    # A clearing posts its authorization's pending transfer, and only the pending transfer
    # names the card transaction (a post's own details are empty): count by either.
    held = aliased(LedgerTransfer)
    transaction_id = func.coalesce(
        LedgerTransfer.details["transaction_id"].astext, held.details["transaction_id"].astext
    )
    spent = LedgerTransfer.debit_account_id == account_id
    in_window = and_(
        LedgerTransfer.created_at >= start,
        LedgerTransfer.created_at < end,
        LedgerTransfer.kind.in_(("single", "post")),
    )
    row = (
        await session.execute(
            select(
                func.coalesce(
                    func.sum(LedgerTransfer.amount).filter(
                        spent, LedgerTransfer.code.in_(SPEND_CODES)
                    ),
                    0,
                )
                - func.coalesce(
                    func.sum(LedgerTransfer.amount).filter(
                        LedgerTransfer.credit_account_id == account_id,
                        LedgerTransfer.code == REFUND_CODE,
                    ),
                    0,
                ),
                func.count(func.distinct(transaction_id)).filter(
                    spent, LedgerTransfer.code.in_(SPEND_CODES)
                ),
            )
            .outerjoin(held, held.id == LedgerTransfer.pending_id)
            .where(
                in_window,
                or_(spent, LedgerTransfer.credit_account_id == account_id),
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def waiver_for(
    session: AsyncSession,
    rule: FeeRule,
    card: Card,
    account_id: str,
    start: datetime,
    end: datetime,
) -> dict[str, Any] | None:
    """The first of the rule's waivers that holds for the card and period, with its evidence."""
    spend: tuple[int, int] | None = None
    for waiver in rule.waivers:
        if waiver.rule == "FIRST_MONTH_FREE":
            month_end = month_later(card.created_at)
            if end <= month_end:
                return {"rule": waiver.rule, "card_created_at": card.created_at.isoformat()}
            continue
        if spend is None:
            spend = await _spend(session, account_id, start, end)
        amount, count = spend
        if waiver.rule == "SPEND_AT_LEAST" and amount >= waiver.amount:
            return {"rule": waiver.rule, "threshold": waiver.amount, "spent": amount}
        if waiver.rule == "TRANSACTIONS_AT_LEAST" and count >= waiver.count:
            return {"rule": waiver.rule, "threshold": waiver.count, "transactions": count}
    return None


async def _fees_by_product(
    session: AsyncSession, program: Program, kind: str, at: datetime
) -> dict[str, schedules.Priced]:
    """Per product with a periodic fee of `kind` priced in its currency: that fee."""
    found = {}
    for product_id, currency in await repository.product_currencies(session, program.id):
        versions = await schedules.schedules_in_effect(session, program.id, product_id, at)
        priced = schedules.priced_from(versions, "CARD_PERIODIC", currency, None, period=kind)
        if priced is not None:
            found[product_id] = priced
    return found


async def charge_periodic(
    session: AsyncSession, *, now: datetime | None = None, limit: int = BATCH
) -> int:
    """Charge (or waive) the periodic fees of the recent periods that ended before `now`, at most
    `limit` cards in this call; the number of fee lines made. Cards already charged for the
    period are not asked again (and the line's unique key stops a racing twin)."""
    now = now or datetime.now(UTC)
    made = 0
    for program in await repository.programs_with_schedules(session, now):
        periods = [
            (kind, *period)
            for kind in PERIODS
            for period in recent_periods(kind, now, program.timezone)
        ]
        for kind, label, start, end in periods:
            priced_by_product = await _fees_by_product(session, program, kind, end)
            if not priced_by_product:
                continue
            cards = await repository.periodic_fee_due(
                session,
                program.id,
                product_ids=list(priced_by_product),
                period=label,
                ended=end,
                limit=limit - made,
            )
            for card, balance in cards:
                priced = priced_by_product[card.product_id]
                waiver = await waiver_for(
                    session, priced.rule, card, balance.ledger_account_id, start, end
                )
                fee = await service.charge_now(
                    session,
                    priced,
                    key=f"CARD_PERIODIC|{card.id}|{label}",
                    balance=balance,
                    waiver=waiver,
                    card_id=card.id,
                    period=label,
                    period_start=start,
                    period_end=end,
                    now=now,
                )
                made += fee is not None
            if made >= limit:
                return made
    return made
