"""Balances, partner balances, reloads and money transfers: the rules, with no HTTP.

The money model (see the README's table):
- a user's or corporation's balance is a ledger account that may never be overdrawn (its debits
  never exceed its credits): what it holds is credits − debits;
- a partner CREDIT balance funds reloads, a partner DEPOSIT balance backs card spending; both may
  never be overdrawn either;
- the program's `funding` account stands for money received from outside (ops reloads of partner
  balances are debited to it), `settlement` for money on its way out (IBAN transfers).
"""

from datetime import UTC, datetime
from typing import Any

from schwifty import IBAN
from schwifty.exceptions import (
    InvalidAccountCode,
    InvalidBankCode,
    InvalidBBANChecksum,
    InvalidBranchCode,
    InvalidChecksumDigits,
    InvalidCountryCode,
    InvalidLength,
    InvalidStructure,
    SchwiftyException,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.balances.events import (
    BalanceCreated,
    BalanceReloaded,
    BalanceStatusChanged,
    PartnerBalanceLow,
    PartnerBalanceReloaded,
    TransferCompleted,
    TransferCreated,
    TransferFailed,
)
from cardcore.balances.repository import PartnerBalanceRepository
from cardcore.fees import schedules, transaction_fees
from cardcore.fees import service as fees
from cardcore.kit.errors import CardcoreError, FieldError, validation_error
from cardcore.kit.outbox import record_event
from cardcore.ledger import service as ledger
from cardcore.ledger.repository import LedgerAccountRepository
from cardcore.models import (
    Balance,
    BalanceStatus,
    Corporation,
    CustomerStatus,
    Fee,
    MoneyTransfer,
    PartnerBalance,
    PaymentContact,
    Program,
    TransferStatus,
    User,
    VerificationStatus,
)
from cardcore.models.ids import new_id

OWNER_ACCOUNT_KIND = {
    "user": "user_balance",
    "corporation": "corporate_balance",
    "gift": "gift_balance",
}
PARTNER_ACCOUNT_KIND = {"CREDIT": "partner_credit", "DEPOSIT": "partner_deposit"}


async def _require_currency(session: AsyncSession, program_id: str, currency: str) -> None:
    allowed = await session.scalar(select(Program.currencies).where(Program.id == program_id))
    if currency not in (allowed or []):
        raise CardcoreError("CURRENCY_NOT_ALLOWED", f"This program does not hold {currency}.")


async def create_balance(
    session: AsyncSession, *, owner: User | Corporation, currency: str
) -> Balance:
    if isinstance(owner, User):
        if owner.status != CustomerStatus.ACTIVE:
            raise CardcoreError("USER_CLOSED")
        approved, owner_type = owner.kyc_status == VerificationStatus.APPROVED, "user"
    else:
        approved, owner_type = owner.kyb_status == VerificationStatus.APPROVED, "corporation"
    if not approved:
        raise CardcoreError("KYC_NOT_APPROVED")
    await _require_currency(session, owner.program_id, currency)
    balance = Balance(
        id=new_id("bal"),
        program_id=owner.program_id,
        owner_type=owner_type,
        owner_id=owner.id,
        currency=currency,
    )
    account = await ledger.open_account(
        session,
        program_id=owner.program_id,
        currency=currency,
        kind=OWNER_ACCOUNT_KIND[owner_type],
        owner_id=balance.id,
        no_overdraft=True,
    )
    balance.ledger_account_id = account.id
    session.add(balance)
    await session.flush()
    await fees.on_balance_created(session, balance)
    record_event(
        session,
        program_id=balance.program_id,
        object_id=balance.id,
        data=BalanceCreated(
            id=balance.id, owner_type=owner_type, owner_id=owner.id, currency=currency
        ),
    )
    return balance


def require_active(balance: Balance) -> None:
    if balance.status != BalanceStatus.ACTIVE:
        raise CardcoreError("BALANCE_NOT_ACTIVE", f"The balance is {balance.status}.")


async def set_status(session: AsyncSession, balance: Balance, to: BalanceStatus) -> Balance:
    if balance.status == to:
        return balance
    if balance.status == BalanceStatus.CLOSED:
        raise CardcoreError("BALANCE_NOT_ACTIVE", "A closed balance stays closed.")
    if to == BalanceStatus.CLOSED:
        totals = await ledger.totals(session, balance.ledger_account_id)
        if totals.posted_credit_balance != 0 or totals.debits_pending or totals.credits_pending:
            raise CardcoreError("BALANCE_NOT_EMPTY")
        balance.closed_at = datetime.now(UTC)
    before = balance.status
    balance.status = to
    await session.flush()
    record_event(
        session,
        program_id=balance.program_id,
        object_id=balance.id,
        data=BalanceStatusChanged(id=balance.id, from_status=before, to_status=to),
    )
    return balance


# -- partner balances ----------------------------------------------------------------------------


async def create_partner_balance(
    session: AsyncSession,
    *,
    program_id: str,
    type: str,
    currency: str,
    low_balance_threshold: int | None,
) -> PartnerBalance:
    await _require_currency(session, program_id, currency)
    if await PartnerBalanceRepository(session, program_id).of_type(type, currency) is not None:
        raise CardcoreError("ALREADY_EXISTS", f"The program has a {type} balance in {currency}.")
    partner_balance = PartnerBalance(
        id=new_id("pbl"),
        program_id=program_id,
        type=type,
        currency=currency,
        low_balance_threshold=low_balance_threshold,
    )
    account = await ledger.open_account(
        session,
        program_id=program_id,
        currency=currency,
        kind=PARTNER_ACCOUNT_KIND[type],
        owner_id=partner_balance.id,
        no_overdraft=True,
    )
    partner_balance.ledger_account_id = account.id
    session.add(partner_balance)
    await session.flush()
    return partner_balance


async def reload_partner_balance(
    session: AsyncSession, partner_balance: PartnerBalance, *, amount: int, reference: str | None
) -> None:
    """Money the BIN sponsor received for the partner: funding → partner balance."""
    funding = await ledger.system_account(
        session,
        program_id=partner_balance.program_id,
        currency=partner_balance.currency,
        kind="funding",
    )
    await ledger.transfer(
        session,
        program_id=partner_balance.program_id,
        debit_account_id=funding.id,
        credit_account_id=partner_balance.ledger_account_id,
        amount=amount,
        currency=partner_balance.currency,
        code="partner_reload",
        details={"reference": reference} if reference else None,
    )
    record_event(
        session,
        program_id=partner_balance.program_id,
        object_id=partner_balance.id,
        data=PartnerBalanceReloaded(
            partner_balance_id=partner_balance.id,
            amount=amount,
            currency=partner_balance.currency,
        ),
    )


async def _partner_balance(
    session: AsyncSession, program_id: str, type: str, currency: str
) -> PartnerBalance | None:
    return await PartnerBalanceRepository(session, program_id).of_type(type, currency)


def crosses(threshold: int, before: int, after: int) -> bool:
    """Once, when crossing the line, not on every debit below it."""
    return before >= threshold > after


async def warn_if_low(
    session: AsyncSession, partner_balance: PartnerBalance, before: int, after: int | None = None
) -> None:
    """`partner_balance.low`, once, when a debit took the balance from above its threshold to
    below it. `after`: the available balance now, when the caller knows it."""
    threshold = partner_balance.low_balance_threshold
    if threshold is None:
        return
    if after is None:
        after = (await ledger.totals(session, partner_balance.ledger_account_id)).available
    if crosses(threshold, before, after):
        record_event(
            session,
            program_id=partner_balance.program_id,
            object_id=partner_balance.id,
            data=PartnerBalanceLow(
                partner_balance_id=partner_balance.id,
                type=partner_balance.type,
                currency=partner_balance.currency,
                available=after,
                threshold=threshold,
            ),
        )


async def load_from_partner(
    session: AsyncSession, balance: Balance, *, amount: int, code: str
) -> str:
    """Move money from the partner's CREDIT balance to `balance`; the ledger transfer's id."""
    source = await _partner_balance(session, balance.program_id, "CREDIT", balance.currency)
    if source is None:
        raise CardcoreError(
            "INSUFFICIENT_PARTNER_FUNDS",
            f"The program has no CREDIT balance in {balance.currency}.",
        )
    before = (await ledger.totals(session, source.ledger_account_id)).available
    try:
        moved = await ledger.transfer(
            session,
            program_id=balance.program_id,
            debit_account_id=source.ledger_account_id,
            credit_account_id=balance.ledger_account_id,
            amount=amount,
            currency=balance.currency,
            code=code,
        )
    except ledger.Overdraft as exc:
        raise CardcoreError("INSUFFICIENT_PARTNER_FUNDS") from exc
    await warn_if_low(session, source, before)
    return moved.id


async def reload_balance(
    session: AsyncSession, balance: Balance, *, amount: int, currency: str
) -> str:
    """Top up a balance by charging the partner's CREDIT balance. Returns the ledger transfer."""
    require_active(balance)
    if balance.owner_type == "gift":
        raise CardcoreError("GIFT_NOT_RELOADABLE")
    if currency != balance.currency:
        raise CardcoreError("CURRENCY_MISMATCH", f"The balance holds {balance.currency}.")
    moved = await load_from_partner(session, balance, amount=amount, code="reload")
    await fees.collect_due(session, balance)
    record_event(
        session,
        program_id=balance.program_id,
        object_id=balance.id,
        data=BalanceReloaded(
            balance_id=balance.id, amount=amount, currency=currency, ledger_transfer_id=moved
        ),
    )
    return moved


# -- summaries -----------------------------------------------------------------------------------


async def balance_summary(session: AsyncSession, program_id: str) -> list[dict[str, Any]]:
    """Per currency: what users and corporations hold ("users"), and that plus the partner
    balances ("wallet"), from the ledger's posted totals."""
    owner_kinds = list(OWNER_ACCOUNT_KIND.values())
    partner_kinds = list(PARTNER_ACCOUNT_KIND.values())
    rows = await LedgerAccountRepository(session, program_id).held_per_currency(
        owner_kinds, owner_kinds + partner_kinds
    )
    return [
        {"currency": currency, "users": users, "wallet": wallet} for currency, users, wallet in rows
    ]


# -- IBAN and transfers --------------------------------------------------------------------------


# Our words for schwifty's refusals: its messages quote the IBAN ("Invalid characters in IBAN
# 4111…"), and what was sent as an IBAN may be a card number.
_IBAN_PROBLEMS: tuple[tuple[type[SchwiftyException], str], ...] = (
    (InvalidLength, "The IBAN does not have its country's length."),
    (InvalidChecksumDigits, "The IBAN's check digits do not match."),
    (InvalidBBANChecksum, "The national check digits inside the IBAN do not match."),
    (InvalidCountryCode, "The IBAN does not start with a known country code."),
    (InvalidBankCode, "The IBAN's bank code is not valid."),
    (InvalidBranchCode, "The IBAN's branch code is not valid."),
    (InvalidAccountCode, "The IBAN's account number is not valid."),
    (
        InvalidStructure,
        "The IBAN has characters or a layout its country does not use: two letters, two check"
        " digits, then letters and digits.",
    ),
)


def parse_iban(value: str) -> IBAN:
    try:
        return IBAN(value)
    except SchwiftyException as exc:
        message = next(
            (text for kind, text in _IBAN_PROBLEMS if isinstance(exc, kind)),
            "This is not a valid IBAN.",
        )
        raise CardcoreError(
            "INVALID_IBAN", errors=[FieldError(field="iban", code="INVALID_IBAN", message=message)]
        ) from exc


def describe_iban(iban: IBAN) -> dict[str, Any]:
    bic = iban.bic
    return {
        "valid": True,
        "iban": iban.compact,
        "formatted": iban.formatted,
        "country": iban.country_code,
        "bank_code": iban.bank_code or None,
        "bic": str(bic) if bic else None,
        "bank_name": iban.bank_name if bic else None,
    }


async def create_payment_contact(
    session: AsyncSession, *, user: User, iban: str, holder_name: str
) -> PaymentContact:
    parsed = parse_iban(iban)
    contact = PaymentContact(
        program_id=user.program_id,
        user_id=user.id,
        iban=parsed.compact,
        bic=str(parsed.bic) if parsed.bic else None,
        holder_name=holder_name,
    )
    session.add(contact)
    await session.flush()
    return contact


async def _debit(session: AsyncSession, **kwargs: Any) -> str:
    try:
        return (await ledger.transfer(session, **kwargs)).id
    except ledger.Overdraft as exc:
        raise CardcoreError("INSUFFICIENT_FUNDS") from exc


async def create_transfer(
    session: AsyncSession,
    *,
    source: Balance,
    amount: int,
    currency: str,
    reference: str | None,
    destination: Balance | None = None,
    contact: PaymentContact | None = None,
) -> MoneyTransfer:
    """To another balance of the program (internal: immediate) or to an IBAN contact
    (external: held on the balance until ops complete or fail it)."""
    require_active(source)
    if currency != source.currency:
        raise CardcoreError("CURRENCY_MISMATCH", f"The balance holds {source.currency}.")
    common: dict[str, Any] = {
        "program_id": source.program_id,
        "amount": amount,
        "currency": currency,
    }
    fee_lines: list[Fee] = []
    if destination is not None:
        require_active(destination)
        if destination.currency != currency:
            raise CardcoreError("CURRENCY_MISMATCH", "Both balances must hold the same currency.")
        if destination.id == source.id:
            raise validation_error(
                "to_balance_id", "SAME_BALANCE", "Source and destination are one."
            )
        ledger_id = await _debit(
            session,
            debit_account_id=source.ledger_account_id,
            credit_account_id=destination.ledger_account_id,
            code="transfer",
            **common,
        )
        await fees.collect_due(session, destination)
        transfer = MoneyTransfer(
            type="INTERNAL",
            source_balance_id=source.id,
            destination_balance_id=destination.id,
            status=TransferStatus.COMPLETED,
            reference=reference,
            ledger_transfer_id=ledger_id,
            completed_at=datetime.now(UTC),
            **common,
        )
    else:
        assert contact is not None
        settlement = await ledger.system_account(
            session, program_id=source.program_id, currency=currency, kind="settlement"
        )
        transfer_id = new_id("trf")
        priced = await schedules.price(
            session,
            program_id=source.program_id,
            product_id=None,
            type_="TRANSFER",
            currency=currency,
            basis=amount,
        )
        if priced is not None:
            fee_lines.append(
                fees.new_line(
                    priced,
                    key=f"TRANSFER|{transfer_id}",
                    balance=source,
                    money_transfer_id=transfer_id,
                )
            )
        # The transfer and its fee are held together, or neither.
        moves = ledger.Linked()
        ledger_id = moves.transfer(
            debit_account_id=source.ledger_account_id,
            credit_account_id=settlement.id,
            code="iban_transfer",
            pending=True,
            **common,
        ).id
        await fees.hold_linked(session, moves, fee_lines, source.ledger_account_id)
        if await ledger.apply(session, moves) is not None:
            raise CardcoreError(
                "INSUFFICIENT_FUNDS",
                "The balance does not cover the transfer and its fee." if fee_lines else None,
            )
        transfer = MoneyTransfer(
            id=transfer_id,
            type="EXTERNAL",
            source_balance_id=source.id,
            payment_contact_id=contact.id,
            status=TransferStatus.PENDING,
            reference=reference,
            ledger_transfer_id=ledger_id,
            **common,
        )
    session.add(transfer)
    await session.flush()
    session.add_all(fee_lines)
    record_event(
        session,
        program_id=transfer.program_id,
        object_id=transfer.id,
        data=TransferCreated(
            id=transfer.id,
            type=transfer.type,
            status=transfer.status,
            amount=amount,
            currency=currency,
        ),
    )
    return transfer


async def settle_transfer(
    session: AsyncSession, transfer: MoneyTransfer, *, completed: bool, reason: str | None
) -> MoneyTransfer:
    """Ops: the bank executed (complete) or refused (fail) an external transfer."""
    if transfer.status != TransferStatus.PENDING:
        raise CardcoreError("TRANSFER_NOT_PENDING", f"The transfer is {transfer.status}.")
    held_fees = await transaction_fees.held_for(session, money_transfer_id=transfer.id)
    holds = await ledger.pending_transfers(
        session,
        [
            transfer.ledger_transfer_id,
            *(f.ledger_transfer_id for f in held_fees if f.ledger_transfer_id is not None),
        ],
    )
    moves = ledger.Linked()
    moves.resolve(holds[transfer.ledger_transfer_id], kind="post" if completed else "void")
    settled = []
    if completed:
        source = await session.get(Balance, transfer.source_balance_id)
        assert source is not None
        # Priced on the amount they were held for: posted from their holds, nothing more taken.
        settled = transaction_fees.settle(
            moves, held_fees, holds, source.ledger_account_id, transfer.amount
        )
    else:
        transaction_fees.release(moves, held_fees, holds)
    if await ledger.apply(session, moves) is not None:
        raise CardcoreError("INTERNAL_ERROR")  # only releases and posts of holds: never refused
    for charged in transaction_fees.mark_settled(settled):
        record_event(
            session, program_id=transfer.program_id, object_id=charged.fee_id, data=charged
        )
    transfer.status = TransferStatus.COMPLETED if completed else TransferStatus.FAILED
    transfer.completed_at = datetime.now(UTC)
    transfer.failure_reason = None if completed else reason
    await session.flush()
    data = (
        TransferCompleted(id=transfer.id, amount=transfer.amount, currency=transfer.currency)
        if completed
        else TransferFailed(id=transfer.id, reason=reason)
    )
    record_event(session, program_id=transfer.program_id, object_id=transfer.id, data=data)
    return transfer
