"""Reads of card transactions and FX rates, scoped to a program; the card a network message names.

The network's own reads and writes of a message (one each) are SQL functions called from
`authorizations/store.py`; what is here serves the routes, force posts and inquiries.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ScalarSelect, Select, select
from sqlalchemy.dialects.postgresql import insert

from cardcore.kit.repository import TenantRepository
from cardcore.models import (
    Balance,
    Card,
    CardTransaction,
    CardTransactionEvent,
    FxRate,
    PartnerBalance,
    Program,
    TransactionStatus,
)


@dataclass(frozen=True)
class TransactionFilters:
    card_id: str | None = None
    balance_id: str | None = None
    user_id: str | None = None
    status: TransactionStatus | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    min_amount: int | None = None
    max_amount: int | None = None


class TransactionRepository(TenantRepository[CardTransaction]):
    model = CardTransaction
    noun = "transaction"

    def listed(self, filters: TransactionFilters) -> Select[CardTransaction]:
        statement = self.matching(
            (CardTransaction.card_id, filters.card_id),
            (CardTransaction.balance_id, filters.balance_id),
            (CardTransaction.user_id, filters.user_id),
            (CardTransaction.status, filters.status),
            created_from=filters.created_from,
            created_to=filters.created_to,
        )
        if filters.min_amount is not None:
            statement = statement.where(CardTransaction.amount >= filters.min_amount)
        if filters.max_amount is not None:
            statement = statement.where(CardTransaction.amount <= filters.max_amount)
        return statement

    async def history(self, transaction: CardTransaction) -> Sequence[CardTransactionEvent]:
        """The transaction's events, oldest first (the transaction was read through `get`)."""
        events = await self.session.scalars(
            select(CardTransactionEvent)
            .where(CardTransactionEvent.transaction_id == transaction.id)
            .order_by(CardTransactionEvent.id)
        )
        return events.all()


class FxRateRepository(TenantRepository[FxRate]):
    model = FxRate
    noun = "FX rate"

    async def all(self) -> Sequence[FxRate]:
        return (await self.session.scalars(self.readable())).all()

    async def rate(self, base: str, quote: str) -> Decimal | None:
        """1 `base` in `quote` (major units), if ops set one."""
        found: Decimal | None = await self.session.scalar(
            self.readable()
            .where(FxRate.base == base, FxRate.quote == quote)
            .with_only_columns(FxRate.rate)
        )
        return found

    async def put(self, base: str, quote: str, rate: Decimal) -> None:
        statement = insert(FxRate).values(
            program_id=self.program_id, base=base, quote=quote, rate=rate
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["program_id", "base", "quote"],
                set_={"rate": statement.excluded.rate},
            )
        )


def message_card(
    program_id: str, *, card_id: str | None, pan_hash: bytes | None
) -> Select[Card, Balance, Program]:
    """The program's card a network message names, by id or by the PAN's lookup hash (then the
    card not yet replaced), with its balance and program."""
    statement = (
        select(Card, Balance, Program)
        .join(Balance, Balance.id == Card.balance_id)
        .join(Program, Program.id == Card.program_id)
        .where(Card.program_id == program_id)
    )
    if card_id is not None:
        return statement.where(Card.id == card_id)
    return statement.where(Card.pan_hash == pan_hash, Card.replaced_by.is_(None))


def deposit_account(program_id: str, currency: str) -> ScalarSelect[Any]:
    """The ledger account of the program's deposit balance in `currency`, as a subquery."""
    return (
        select(PartnerBalance.ledger_account_id)
        .where(
            PartnerBalance.program_id == program_id,
            PartnerBalance.type == "DEPOSIT",
            PartnerBalance.currency == currency,
        )
        .scalar_subquery()
    )
