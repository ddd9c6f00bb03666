"""The ledger's operations and invariants, at the service level."""

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.errors import CardcoreError
from cardcore.ledger import service as ledger
from cardcore.ledger.verify import verify
from cardcore.models import LedgerAccount, LedgerAccountDelta
from tests.factories import Partner


async def _accounts(session: AsyncSession, partner: Partner) -> tuple[str, str, str]:
    source = await ledger.system_account(
        session, program_id=partner.program_id, currency="EUR", kind="funding"
    )
    strict = await ledger.open_account(
        session,
        program_id=partner.program_id,
        currency="EUR",
        kind="user_balance",
        owner_id="a",
        no_overdraft=True,
    )
    other = await ledger.open_account(
        session,
        program_id=partner.program_id,
        currency="EUR",
        kind="user_balance",
        owner_id="b",
        no_overdraft=True,
    )
    return source.id, strict.id, other.id


async def test_single_pending_post_void_expire(session: AsyncSession, partner: Partner) -> None:
    funding, alice, bob = await _accounts(session, partner)
    common = {"program_id": partner.program_id, "currency": "EUR", "code": "test"}
    await ledger.transfer(
        session, debit_account_id=funding, credit_account_id=alice, amount=1000, **common
    )
    assert (await ledger.totals(session, alice)).available == 1000

    hold = await ledger.transfer(
        session, debit_account_id=alice, credit_account_id=bob, amount=300, pending=True, **common
    )
    totals = await ledger.totals(session, alice)
    assert (totals.posted_credit_balance, totals.available, totals.debits_pending) == (
        1000,
        700,
        300,
    )
    await ledger.resolve(session, hold.id, kind="post", amount=200)  # the rest is released
    totals = await ledger.totals(session, alice)
    assert (totals.posted_credit_balance, totals.available, totals.debits_pending) == (800, 800, 0)
    assert (await ledger.totals(session, bob)).posted_credit_balance == 200

    with pytest.raises(CardcoreError) as twice:
        await ledger.resolve(session, hold.id, kind="void")
    assert twice.value.code == "TRANSFER_ALREADY_RESOLVED"

    for kind in ("void", "expire"):
        held = await ledger.transfer(
            session,
            debit_account_id=alice,
            credit_account_id=bob,
            amount=100,
            pending=True,
            **common,
        )
        await ledger.resolve(session, held.id, kind=kind)
        assert (await ledger.totals(session, alice)).available == 800
    held = await ledger.transfer(
        session,
        debit_account_id=alice,
        credit_account_id=bob,
        amount=100,
        pending=True,
        **common,
    )
    with pytest.raises(CardcoreError):
        await ledger.resolve(session, held.id, kind="post", amount=101)
    assert await verify(session) == []


async def test_no_code_path_can_overdraw(session: AsyncSession, partner: Partner) -> None:
    funding, alice, bob = await _accounts(session, partner)
    common = {"program_id": partner.program_id, "currency": "EUR", "code": "test"}
    await ledger.transfer(
        session, debit_account_id=funding, credit_account_id=alice, amount=100, **common
    )
    with pytest.raises(ledger.Overdraft):
        await ledger.transfer(
            session, debit_account_id=alice, credit_account_id=bob, amount=101, **common
        )
    await ledger.transfer(
        session, debit_account_id=alice, credit_account_id=bob, amount=60, pending=True, **common
    )
    with pytest.raises(ledger.Overdraft):
        await ledger.transfer(
            session, debit_account_id=alice, credit_account_id=bob, amount=41, **common
        )
    # Even a raw UPDATE that skips the service is refused by the database.
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await session.execute(
                update(LedgerAccount)
                .where(LedgerAccount.id == alice)
                .values(debits_posted=LedgerAccount.debits_posted + 41)
            )
    totals = await ledger.totals(session, alice)
    assert (totals.posted_credit_balance, totals.available) == (100, 40)
    assert await verify(session) == []


async def test_an_overdraft_allowance_is_per_transfer_and_the_database_holds_it(
    session: AsyncSession, partner: Partner
) -> None:
    """A fee a program lets go below zero: that one transfer may take the account down to minus
    its allowance; nothing else may take from it while it is below zero, anything may give to
    it, and the CHECK constraint still refuses going deeper than any allowance given."""
    from sqlalchemy.exc import IntegrityError

    funding, alice, bob = await _accounts(session, partner)
    common = {"program_id": partner.program_id, "currency": "EUR", "code": "test"}
    await ledger.transfer(
        session, debit_account_id=funding, credit_account_id=alice, amount=100, **common
    )
    hold = await ledger.transfer(
        session, debit_account_id=alice, credit_account_id=bob, amount=40, pending=True, **common
    )
    with pytest.raises(ledger.Overdraft):
        await ledger.transfer(
            session,
            debit_account_id=alice,
            credit_account_id=bob,
            amount=91,
            overdraft_limit=30,
            **common,
        )
    await ledger.transfer(
        session,
        debit_account_id=alice,
        credit_account_id=bob,
        amount=90,
        overdraft_limit=30,
        **common,
    )
    assert (await ledger.totals(session, alice)).available == -30
    # Below zero, an ordinary transfer cannot take, not even one cent...
    with pytest.raises(ledger.Overdraft):
        await ledger.transfer(
            session, debit_account_id=alice, credit_account_id=bob, amount=1, **common
        )
    # ...but a release, a post and a credit go through.
    await ledger.resolve(session, hold.id, kind="post")
    assert (await ledger.totals(session, alice)).available == -30
    await ledger.transfer(
        session, debit_account_id=funding, credit_account_id=alice, amount=5, **common
    )
    assert (await ledger.totals(session, alice)).available == -25
    limit = await session.scalar(
        select(LedgerAccount.overdraft_limit).where(LedgerAccount.id == alice)
    )
    assert limit == 30
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await session.execute(
                update(LedgerAccount)
                .where(LedgerAccount.id == alice)
                .values(debits_posted=LedgerAccount.debits_posted + 6)
            )
    assert await verify(session) == []


async def test_keys_make_transfers_idempotent_and_currencies_must_match(
    session: AsyncSession, partner: Partner
) -> None:
    funding, alice, _ = await _accounts(session, partner)
    common = {
        "program_id": partner.program_id,
        "code": "test",
        "debit_account_id": funding,
        "credit_account_id": alice,
    }
    first = await ledger.transfer(session, amount=10, currency="EUR", key="op-1", **common)
    again = await ledger.transfer(session, amount=10, currency="EUR", key="op-1", **common)
    assert first.id == again.id
    assert (await ledger.totals(session, alice)).available == 10
    with pytest.raises(CardcoreError) as mismatch:
        await ledger.transfer(session, amount=10, currency="USD", **common)
    assert mismatch.value.code == "CURRENCY_MISMATCH"


async def test_verify_finds_a_tampered_total(session: AsyncSession, partner: Partner) -> None:
    funding, alice, _ = await _accounts(session, partner)
    await ledger.transfer(
        session,
        program_id=partner.program_id,
        currency="EUR",
        code="t",
        debit_account_id=funding,
        credit_account_id=alice,
        amount=50,
    )
    assert await verify(session) == []
    await session.execute(
        update(LedgerAccount)
        .where(LedgerAccount.id == alice)
        .values(credits_posted=LedgerAccount.credits_posted + 1)
    )
    problems = await verify(session)
    assert any("EUR: debits minus credits is -1 posted" in p for p in problems)
    assert any(f"account {alice}" in p for p in problems)


async def test_verify_finds_money_crossing_programs(
    session: AsyncSession, partner: Partner, other_partner: Partner
) -> None:
    # No route does this (programs are tenants, and one may be live and the other test); if a
    # bug ever did, the books would still balance in total, so verify must look for it.
    funding, _, _ = await _accounts(session, partner)
    _, elsewhere, _ = await _accounts(session, other_partner)
    crossing = await ledger.transfer(
        session,
        program_id=partner.program_id,
        currency="EUR",
        code="t",
        debit_account_id=funding,
        credit_account_id=elsewhere,
        amount=50,
    )
    problems = await verify(session)
    assert problems == [f"transfer {crossing.id} touches an account of another program"]


async def test_system_account_changes_are_deltas_folded_later(
    session: AsyncSession, partner: Partner
) -> None:
    """A system account's row is never updated by a transfer (nothing queues on it); its totals
    are the row plus the deltas, before and after they are folded in."""
    funding, alice, _ = await _accounts(session, partner)
    common = {"program_id": partner.program_id, "currency": "EUR", "code": "test"}
    for amount in (1_000, 250, 5):
        await ledger.transfer(
            session, debit_account_id=funding, credit_account_id=alice, amount=amount, **common
        )
    hold = await ledger.transfer(
        session,
        debit_account_id=alice,
        credit_account_id=funding,
        amount=55,
        pending=True,
        **common,
    )
    row = await session.get(LedgerAccount, funding, populate_existing=True)
    assert row is not None
    assert (row.debits_posted, row.credits_pending) == (0, 0), "the row itself is untouched"
    before = await ledger.totals(session, funding)
    assert (before.debits_posted, before.credits_pending) == (1_255, 55)
    assert await verify(session) == []

    assert await ledger.fold_deltas(session) >= 4
    assert await ledger.fold_deltas(session) == 0, "a delta folds once"
    assert await ledger.totals(session, funding) == before
    row = await session.get(LedgerAccount, funding, populate_existing=True)
    assert row is not None
    assert (row.debits_posted, row.credits_pending) == (1_255, 55)
    await ledger.resolve(session, hold.id, kind="post")
    assert (await ledger.totals(session, funding)).credits_posted == 55
    assert await verify(session) == []


async def test_verify_notices_a_lost_delta(session: AsyncSession, partner: Partner) -> None:
    funding, alice, _ = await _accounts(session, partner)
    await ledger.transfer(
        session,
        program_id=partner.program_id,
        currency="EUR",
        code="test",
        debit_account_id=funding,
        credit_account_id=alice,
        amount=700,
    )
    await session.execute(
        delete(LedgerAccountDelta).where(LedgerAccountDelta.account_id == funding)
    )
    problems = await verify(session)
    assert any("differ from its transfers" in p for p in problems), problems


async def test_a_system_account_rolled_back_is_not_remembered(
    session: AsyncSession, partner: Partner
) -> None:
    nested = await session.begin_nested()
    made = await ledger.system_account(
        session, program_id=partner.program_id, currency="EUR", kind="card_network"
    )
    await nested.rollback()
    again = await ledger.system_account_id(
        session, program_id=partner.program_id, currency="EUR", kind="card_network"
    )
    assert again != made.id
    assert await session.get(LedgerAccount, again) is not None
