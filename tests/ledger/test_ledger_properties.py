"""Random sequences of ledger operations keep every invariant of `cardcore ledger verify`."""

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from cardcore.config import Settings
from cardcore.kit.errors import CardcoreError
from cardcore.ledger import service as ledger
from cardcore.ledger.verify import verify
from cardcore.programs import service as programs

# A Hypothesis state machine over the ledger.
pytestmark = pytest.mark.slow


class LedgerMachine(RuleBasedStateMachine):
    """Runs on its own event loop and connection, inside one transaction rolled back at the end:
    verify sees every step's uncommitted state and nothing is left behind."""

    loop: asyncio.AbstractEventLoop
    database_url: str

    accounts = Bundle("accounts")
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.engine = create_async_engine(self.database_url)
        self.connection = self.run(self.engine.connect())
        self.run(self.connection.begin())
        self.session = AsyncSession(bind=self.connection, join_transaction_mode="create_savepoint")
        self.expected_available: dict[str, int] = {}

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.session.close())
        self.run(self.connection.close())
        self.run(self.engine.dispose())

    @initialize(target=accounts)
    def open_accounts(self):  # type: ignore[no-untyped-def]
        async def make() -> list[str]:
            program = await programs.create_program(self.session, name="prop", currencies=["EUR"])
            self.program_id = program.id
            funding = await ledger.system_account(
                self.session, program_id=program.id, currency="EUR", kind="funding"
            )
            made = [funding.id]
            for n in range(3):
                account = await ledger.open_account(
                    self.session,
                    program_id=program.id,
                    currency="EUR",
                    kind="user_balance",
                    owner_id=f"prop{n}",
                    no_overdraft=True,
                )
                made.append(account.id)
            self.funding = funding.id
            return made

        return multiple(*self.run(make()))

    @rule(
        target=holds,
        debit=accounts,
        credit=accounts,
        amount=st.integers(0, 400),
        pending=st.booleans(),
    )
    def move(self, debit: str, credit: str, amount: int, pending: bool):  # type: ignore[no-untyped-def]
        if debit == credit:
            return multiple()
        try:
            made = self.run(
                ledger.transfer(
                    self.session,
                    program_id=self.program_id,
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=amount,
                    currency="EUR",
                    code="prop",
                    pending=pending,
                )
            )
        except ledger.Overdraft:
            # Refused only when the debited account really lacked the money.
            totals = self.run(ledger.totals(self.session, debit))
            assert debit != self.funding
            assert totals.available < amount
            return multiple()
        return multiple(made.id) if pending else multiple()

    @rule(hold=holds, kind=st.sampled_from(["post", "void", "expire"]), fraction=st.floats(0, 1))
    def resolve(self, hold: str, kind: str, fraction: float) -> None:
        async def go() -> None:
            pending = await ledger._pending(self.session, hold)
            amount = int(pending.amount * fraction) if kind == "post" else None
            if await ledger.resolution_of(self.session, hold) is None:
                await ledger.resolve(self.session, hold, kind=kind, amount=amount)
                return
            # A second resolution of the same hold is always refused.
            with pytest.raises(CardcoreError, match="TRANSFER_ALREADY_RESOLVED"):
                await ledger.resolve(self.session, hold, kind=kind, amount=amount)

        self.run(go())

    @invariant()
    def books_balance(self) -> None:
        if hasattr(self, "program_id"):
            assert self.run(verify(self.session)) == []

    @invariant()
    def no_strict_account_is_overdrawn(self) -> None:
        if not hasattr(self, "program_id"):
            return
        for account in self.run(self.strict_accounts()):
            assert account.available >= 0

    async def strict_accounts(self) -> list[ledger.Totals]:
        from sqlalchemy import select

        from cardcore.models import LedgerAccount

        ids = await self.session.scalars(
            select(LedgerAccount.id).where(
                LedgerAccount.program_id == self.program_id,
                LedgerAccount.debits_must_not_exceed_credits.is_(True),
            )
        )
        return [await ledger.totals(self.session, account_id) for account_id in ids]


def test_random_ledger_operations_keep_the_invariants(settings_for_tests: Settings) -> None:
    loop = asyncio.new_event_loop()
    try:
        LedgerMachine.loop = loop
        LedgerMachine.database_url = settings_for_tests.database_url or ""
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=20,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        loop.close()
