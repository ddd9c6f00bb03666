"""Reads of balances, partner balances, payment contacts and transfers, scoped to a program; a
balance's ledger statement."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, case, func, literal, or_, select

from cardcore.kit.envelope import ListMeta
from cardcore.kit.pagination import PageParams, decode_cursor, encode_cursor
from cardcore.kit.repository import TenantRepository
from cardcore.models import (
    Balance,
    Card,
    LedgerTransfer,
    MoneyTransfer,
    PartnerBalance,
    PaymentContact,
)


@dataclass(frozen=True)
class EntryFilters:
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    code: str | None = None
    kind: str | None = None


class BalanceRepository(TenantRepository[Balance]):
    model = Balance
    noun = "balance"

    def of_owner(self, owner_id: str) -> Select[Balance]:
        return self.readable().where(Balance.owner_id == owner_id)

    async def card_ids(self, balance: Balance) -> list[str]:
        """The cards spending from the balance (read through `get`)."""
        found = await self.session.scalars(
            select(Card.id).where(Card.balance_id == balance.id).order_by(Card.id)
        )
        return list(found)

    async def ledger_entries(
        self, balance: Balance, filters: EntryFilters, page: PageParams
    ) -> tuple[Sequence[Row[Any]], ListMeta]:
        """The balance's ledger entries, newest first, each with the running balance after it;
        keyset-paged on the transfer id."""
        account = balance.ledger_account_id
        credit = LedgerTransfer.credit_account_id == account
        effect = case(
            (
                LedgerTransfer.kind.in_(["single", "post"]),
                case((credit, LedgerTransfer.amount), else_=-LedgerTransfer.amount),
            ),
            else_=literal(0),
        )
        # The running total is computed over the account's whole history before any filter, so
        # it is right on every page and under every filter.
        entries = (
            select(
                LedgerTransfer.id,
                LedgerTransfer.kind,
                LedgerTransfer.code,
                case((credit, "credit"), else_="debit").label("direction"),
                LedgerTransfer.amount,
                LedgerTransfer.currency,
                LedgerTransfer.pending_id,
                LedgerTransfer.details["fee_id"].astext.label("fee_id"),
                LedgerTransfer.details["transaction_id"].astext.label("transaction_id"),
                LedgerTransfer.created_at,
                func.sum(effect).over(order_by=LedgerTransfer.id).label("running_balance"),
            )
            .where(or_(LedgerTransfer.debit_account_id == account, credit))
            .subquery()
        )
        statement = select(entries)
        if filters.created_from is not None:
            statement = statement.where(entries.c.created_at >= filters.created_from)
        if filters.created_to is not None:
            statement = statement.where(entries.c.created_at < filters.created_to)
        if filters.code is not None:
            statement = statement.where(entries.c.code == filters.code)
        if filters.kind is not None:
            statement = statement.where(entries.c.kind == filters.kind)
        if page.cursor is not None:
            statement = statement.where(entries.c.id < decode_cursor(page.cursor, "ltr"))
        rows = (
            await self.session.execute(
                statement.order_by(entries.c.id.desc()).limit(page.limit + 1)
            )
        ).all()
        has_more = len(rows) > page.limit
        rows = rows[: page.limit]
        next_cursor = encode_cursor(rows[-1].id) if has_more else None
        return rows, ListMeta(next_cursor=next_cursor, has_more=has_more)


class PartnerBalanceRepository(TenantRepository[PartnerBalance]):
    model = PartnerBalance
    noun = "partner balance"

    async def of_type(self, type: str, currency: str) -> PartnerBalance | None:
        """The program's partner balance of `type` in `currency` (there is at most one)."""
        found: PartnerBalance | None = await self.session.scalar(
            self.readable().where(PartnerBalance.type == type, PartnerBalance.currency == currency)
        )
        return found


class PaymentContactRepository(TenantRepository[PaymentContact]):
    model = PaymentContact
    noun = "payment contact"


class TransferRepository(TenantRepository[MoneyTransfer]):
    model = MoneyTransfer
    noun = "transfer"
