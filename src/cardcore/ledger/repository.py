"""Reads of a program's ledger accounts: its system accounts and what its accounts hold."""

from sqlalchemy import case, func, select

from cardcore.kit.repository import TenantRepository
from cardcore.models import LedgerAccount


class LedgerAccountRepository(TenantRepository[LedgerAccount]):
    model = LedgerAccount
    noun = "ledger account"

    async def system(self, currency: str, kind: str) -> tuple[LedgerAccount, bool] | None:
        """The program's account of `kind` in `currency` that has no owner, and whether it was
        made before this transaction began."""
        row = (
            await self.session.execute(
                self.readable()
                .add_columns(LedgerAccount.created_at < func.now())
                .where(
                    LedgerAccount.currency == currency,
                    LedgerAccount.kind == kind,
                    LedgerAccount.owner_id.is_(None),
                )
            )
        ).one_or_none()
        return None if row is None else (row[0], bool(row[1]))

    async def held_per_currency(
        self, owner_kinds: list[str], counted_kinds: list[str]
    ) -> list[tuple[str, int, int]]:
        """Per currency (in order): the posted balance of the accounts of `owner_kinds`, and of
        all the accounts of `counted_kinds`."""
        held = LedgerAccount.credits_posted - LedgerAccount.debits_posted
        rows = (
            await self.session.execute(
                select(
                    LedgerAccount.currency,
                    func.sum(case((LedgerAccount.kind.in_(owner_kinds), held), else_=0)),
                    func.sum(case((LedgerAccount.kind.in_(counted_kinds), held), else_=0)),
                )
                .where(
                    LedgerAccount.program_id == self.program_id,
                    LedgerAccount.kind.in_(counted_kinds),
                )
                .group_by(LedgerAccount.currency)
                .order_by(LedgerAccount.currency)
            )
        ).all()
        return [(currency, int(owned or 0), int(counted or 0)) for currency, owned, counted in rows]
