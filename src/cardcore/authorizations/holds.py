"""Holds and legs: the ledger accounts a card transaction moves money between, and the pending
transfers an authorization holds its amount with.

Without a partner DEPOSIT balance, the user's balance pays the network. With one, the deposit
pays the network and the user's balance pays the partner back for it (`Legs`); the deposit leg
goes first, as the program's deposit is charged before the user's funds are held.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.ledger import service as ledger
from cardcore.models import Balance, CardTransaction

NETWORK_ACCOUNT = "card_network"
# With a partner DEPOSIT balance the network is paid from the deposit, and the user's money goes
# to this account: what the partner recovers from its users for the deposit it spent.
RECOVERY_ACCOUNT = "partner_deposit_recovery"


@dataclass(frozen=True, slots=True)
class Legs:
    """The ledger accounts a card transaction moves money between, each pair debit first: the
    user's balance to the network, or the deposit to the network and then the user's balance to
    the recovery account."""

    pairs: tuple[tuple[str, str], ...]
    deposit: bool

    @property
    def user_account(self) -> str:
        """The user's balance account: the debit of the last pair."""
        return self.pairs[-1][0]

    def reversed(self) -> "Legs":
        return Legs(tuple((credit, debit) for debit, credit in self.pairs), self.deposit)


class Refused(Exception):
    """A leg would overdraw; nothing moved. `reason` names which side could not pay."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def legs_of(session: AsyncSession, row: CardTransaction, user_account_id: str) -> Legs:
    currency = row.billing_currency
    network = await ledger.system_account_id(
        session, program_id=row.program_id, currency=currency, kind=NETWORK_ACCOUNT
    )
    if row.deposit_account_id is None:
        return Legs(((user_account_id, network),), deposit=False)
    recovery = await ledger.system_account_id(
        session, program_id=row.program_id, currency=currency, kind=RECOVERY_ACCOUNT
    )
    return Legs(((row.deposit_account_id, network), (user_account_id, recovery)), deposit=True)


async def move(
    session: AsyncSession,
    row: CardTransaction,
    legs: Legs,
    amount: int,
    *,
    code: str,
    pending: bool,
    user_overdraft: int = 0,
) -> list[Any]:
    """Move (or hold) `amount` on every leg, linked: all legs or none. Returns the transfers in
    leg order; raises Refused naming the side that could not pay. `user_overdraft` lets the
    user leg go that far below zero (a smaller hold replacing a larger one on a balance a fee
    took below zero)."""
    moves = ledger.Linked()
    last = len(legs.pairs) - 1
    transfers = [
        moves.transfer(
            program_id=row.program_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            currency=row.billing_currency,
            code=code,
            pending=pending,
            details={"transaction_id": row.id},
            overdraft_limit=user_overdraft if index == last else 0,
        )
        for index, (debit, credit) in enumerate(legs.pairs)
    ]
    refused = await ledger.apply(session, moves)
    if refused is not None:
        deposit_side = legs.deposit and refused in legs.pairs[0]
        raise Refused("PARTNER_DEPOSIT_INSUFFICIENT" if deposit_side else "INSUFFICIENT_FUNDS")
    return transfers


def set_holds(row: Any, holds: list[Any]) -> None:
    """Remember the pending transfers of a hold: the user leg's, after the deposit leg's when
    there is one."""
    row.hold_transfer_id = holds[-1].id
    row.deposit_hold_transfer_id = holds[0].id if len(holds) > 1 else None


def forget_holds(row: Any) -> None:
    row.hold_transfer_id = row.deposit_hold_transfer_id = None


def hold_ids(row: Any) -> list[str]:
    return [h for h in (row.deposit_hold_transfer_id, row.hold_transfer_id) if h is not None]


async def user_account(session: AsyncSession, row: CardTransaction) -> str:
    """The ledger account of the transaction's balance."""
    account = await session.scalar(
        select(Balance.ledger_account_id).where(Balance.id == row.balance_id)
    )
    assert account is not None
    return account
