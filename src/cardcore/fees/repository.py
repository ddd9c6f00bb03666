"""Reads of fee schedules, fee lines and fee refunds, scoped to a program; the cards whose
periodic fee is due; fee revenue, from the ledger."""

from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.repository import TenantRepository
from cardcore.models import (
    Balance,
    BalanceStatus,
    Card,
    CardProduct,
    Fee,
    FeeRefund,
    FeeSchedule,
    Program,
    ids,
)
from cardcore.models.cards import TERMINAL_STATUSES
from cardcore.models.ids import to_uuid


class ScheduleRepository(TenantRepository[FeeSchedule]):
    model = FeeSchedule
    noun = "fee schedule"

    def listed(self, product_id: str | None) -> Select[FeeSchedule]:
        return self.matching((FeeSchedule.product_id, product_id))

    async def names_a_product(self, product_id: str) -> bool:
        """Whether `product_id` is one of the program's products (a malformed id is not)."""
        if not ids.is_valid("prd", product_id):
            return False
        found = await self.session.scalar(
            select(CardProduct.id).where(
                CardProduct.id == product_id, CardProduct.program_id == self.program_id
            )
        )
        return found is not None

    async def latest_version(self, product_id: str | None) -> int:
        """The highest version of the program's schedule (`product_id` None) or of a product's;
        0 before the first."""
        found = await self.session.scalar(
            self.readable()
            .with_only_columns(func.max(FeeSchedule.version))
            .where(
                FeeSchedule.product_id.is_(None)
                if product_id is None
                else FeeSchedule.product_id == product_id
            )
        )
        return found or 0


class FeeRepository(TenantRepository[Fee]):
    model = Fee
    noun = "fee"

    def listed(self, **filters: str | None) -> Select[Fee]:
        """Fee lines with each named column equal to its value (`balance_id=…`, `status=…`)."""
        return self.matching(*((getattr(Fee, name), value) for name, value in filters.items()))

    def of_owner(self, owner_id: str) -> Select[Fee]:
        """The fee lines on the balances a user (or corporation) owns."""
        owned = select(Balance.id).where(
            Balance.program_id == self.program_id, Balance.owner_id == owner_id
        )
        return self.readable().where(Fee.balance_id.in_(owned))


class FeeRefundRepository(TenantRepository[FeeRefund]):
    model = FeeRefund
    noun = "fee refund"

    def of_fee(self, fee_id: str) -> Select[FeeRefund]:
        return self.readable().where(FeeRefund.fee_id == fee_id)


async def programs_with_schedules(session: AsyncSession, now: datetime) -> list[Program]:
    """The programs with a fee schedule version in effect at `now`."""
    return list(
        await session.scalars(
            select(Program).where(
                exists().where(
                    FeeSchedule.program_id == Program.id, FeeSchedule.effective_from <= now
                )
            )
        )
    )


async def product_currencies(session: AsyncSession, program_id: str) -> list[tuple[str, str]]:
    """(product id, currency) of each of the program's products."""
    rows = await session.execute(
        select(CardProduct.id, CardProduct.currency).where(CardProduct.program_id == program_id)
    )
    return [(product_id, currency) for product_id, currency in rows]


async def periodic_fee_due(
    session: AsyncSession,
    program_id: str,
    *,
    product_ids: list[str],
    period: str,
    ended: datetime,
    limit: int,
) -> list[tuple[Card, Balance]]:
    """Up to `limit` of the program's live cards of those products, made before the period
    `ended`, on an open balance, with no periodic fee line for `period` yet; by card id."""
    charged = exists().where(
        Fee.card_id == Card.id, Fee.type == "CARD_PERIODIC", Fee.period == period
    )
    rows = await session.execute(
        select(Card, Balance)
        .join(Balance, Balance.id == Card.balance_id)
        .where(
            Card.program_id == program_id,
            Card.product_id.in_(product_ids),
            Card.status.not_in(TERMINAL_STATUSES),
            Card.replaced_by.is_(None),
            Card.created_at < ended,
            Balance.status != BalanceStatus.CLOSED,
            ~charged,
        )
        .order_by(Card.id)
        .limit(limit)
    )
    return [(card, balance) for card, balance in rows]


async def earlier_cards(session: AsyncSession, card: Card) -> int:
    """How many cards the card's user got before it in its program, replacements not counted."""
    found = await session.scalar(
        select(func.count())
        .select_from(Card)
        .where(
            Card.program_id == card.program_id,
            Card.user_id == card.user_id,
            Card.replacement_for.is_(None),
            Card.id != card.id,
        )
    )
    return found or 0


_REVENUE = text(
    """
    SELECT t.currency, t.details->>'fee_type' AS type,
           sum(t.amount) FILTER (WHERE t.code = 'fee') AS charged,
           sum(t.amount) FILTER (WHERE t.code = 'fee_refund') AS refunded,
           count(DISTINCT t.details->>'fee_id') FILTER (WHERE t.code = 'fee') AS fee_count
    FROM ledger_transfers t
    JOIN ledger_accounts a ON a.id IN (t.credit_account_id, t.debit_account_id)
    WHERE a.program_id = :program_id AND a.kind = 'fee_revenue' AND a.owner_id IS NULL
      AND t.program_id = :program_id
      AND t.kind IN ('single', 'post') AND t.code IN ('fee', 'fee_refund')
      AND t.created_at >= :start AND t.created_at < :end
    GROUP BY 1, 2 ORDER BY 1, 2
    """
)


async def revenue(
    session: AsyncSession, program_id: str, start: datetime, end: datetime
) -> list[Row[Any]]:
    """Fee revenue per currency and fee type, from the ledger: posted fee transfers into the fee
    revenue account less fee refunds out of it, created in [start, end)."""
    return list(
        await session.execute(
            _REVENUE, {"program_id": to_uuid("prg", program_id), "start": start, "end": end}
        )
    )
