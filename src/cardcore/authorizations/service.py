"""The authorization engine: decide a card transaction and hold the money; force posts and
merchant credits (what follows an authorization is in follow_ups.py).

An authorization finds the card (by id, or by PAN through the vault's keyed hash), checks
expiry, CVV2 and PIN, applies the card's lifecycle and spend controls (`cards/controls.evaluate`,
the one function that decides), then holds the amount on the card's balance with a pending ledger
transfer — which the database refuses if it would overdraw, so two authorizations racing for the
last euro cannot both win. Declines are transactions too. A program with a partner DEPOSIT
balance has the deposit charged alongside every hold (see `Legs`).

Every network message carries its network ids, unique per program and kind of message: a
retransmission returns the first answer and never moves money twice, and the same ids on a
different message are refused.

The authorization is on the hot path: one read and one write (store.py), in the request's
transaction with the card locked by the read, or — on the lean path's own pool — each a
transaction of its own, the write recording the decision only if the card is as read.
"""

import contextlib
import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.authorizations import store
from cardcore.authorizations.events import (
    AuthorizationDecided,
    AuthorizationUpdated,
)
from cardcore.balances import service as balances
from cardcore.cards import controls, lifecycle, zone_pin_keys
from cardcore.cards.pin_blocks import PinVerdict, verify_pin_block
from cardcore.cards.service import CardServices, card_cvv2, expiry_yymm
from cardcore.db import driver_connection
from cardcore.fees import service as fees
from cardcore.kit.errors import CardcoreError, NotFound
from cardcore.kit.ids import is_valid, new_id
from cardcore.kit.money import MAX_AMOUNT, currency_exponent
from cardcore.kit.outbox import new_event, record_event
from cardcore.kit.rows import plain
from cardcore.ledger import service as ledger
from cardcore.models import (
    Balance,
    Card,
    CardTransaction,
    CardTransactionEvent,
    Event,
    FxRate,
    LedgerTransfer,
    PartnerBalance,
    Program,
)

PIN_TRIES = 3
NETWORK_ACCOUNT = "card_network"
# With a partner DEPOSIT balance the network is paid from the deposit, and the user's money goes
# to this account: what the partner recovers from its users for the deposit it spent.
RECOVERY_ACCOUNT = "partner_deposit_recovery"


async def convert(
    session: AsyncSession, program: Program, amount: int, source: str, target: str
) -> int | None:
    """`convert_at` the program's rate from `source` to `target`, read now."""
    if source == target:
        return amount
    rate = await session.scalar(
        select(FxRate.rate).where(
            FxRate.program_id == program.id, FxRate.base == source, FxRate.quote == target
        )
    )
    return convert_at(rate, program.fx_markup_bps, amount, source, target)


def convert_at(
    rate: Decimal | None, markup_bps: int, amount: int, source: str, target: str
) -> int | None:
    """`amount` (minor units of `source`) in minor units of `target` at `rate`, with the
    program's markup, rounded half up to the target's minor unit; None when there is no rate,
    or when the result would be above MAX_AMOUNT (an absurd rate): no balance could be charged
    it, and the ledger's columns could not hold it."""
    if source == target:
        return amount
    if rate is None:
        return None
    source_exp, target_exp = currency_exponent(source), currency_exponent(target)
    assert source_exp is not None
    assert target_exp is not None
    major = Decimal(amount) / (Decimal(10) ** source_exp)
    billed = major * Decimal(rate) * (1 + Decimal(markup_bps) / Decimal(10_000))
    scaled = billed * (Decimal(10) ** target_exp)
    # Checked before rounding, which a number of 30 digits would not survive: anything that
    # rounds above MAX_AMOUNT.
    if scaled >= MAX_AMOUNT + Decimal("0.5"):
        return None
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class AuthorizationRequest:
    amount: int
    currency: str
    channel: str
    entry_mode: str
    merchant: dict[str, Any]
    network_key: str
    card_id: str | None = None
    pan: str | None = None
    expiry: str | None = None  # YYMM
    cvv2: str | None = None
    # An ISO 9564 PIN block enciphered under the program's zone PIN key (format 0 or 4).
    pin_block: bytes | None = None
    pin_block_format: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def reused_ids() -> CardcoreError:
    return CardcoreError(
        "DUPLICATE_REQUEST_ID", "These network ids were already used for a different message."
    )


async def _stored(session: AsyncSession, network_key: str) -> CardTransactionEvent | None:
    return await session.scalar(
        select(CardTransactionEvent).where(CardTransactionEvent.network_key == network_key)
    )


@dataclass
class Loaded:
    """A card message's card (locked), balance and program; then, read under the card's lock, the
    message's first answer if it is a retransmission and the program's deposit account."""

    card: Card
    balance: Balance
    program: Program
    previous: dict[str, Any] | None = None
    deposit_account_id: str | None = None


async def _load(
    session: AsyncSession,
    services: CardServices,
    program_id: str,
    request: AuthorizationRequest,
    *,
    lock: bool = True,
) -> Loaded:
    """A force post's or inquiry's card, balance and program; with `lock`, in two statements,
    the second (after the lock) with the first answer and the deposit account."""
    query = (
        select(Card, Balance, Program)
        .join(Balance, Balance.id == Card.balance_id)
        .join(Program, Program.id == Card.program_id)
        .where(Card.program_id == program_id)
    )
    card_id, pan_hash = _card_ref(services, request)
    if card_id is not None:
        query = query.where(Card.id == card_id)
    else:
        query = query.where(Card.pan_hash == pan_hash, Card.replaced_by.is_(None))
    found = (await session.execute(query.with_for_update(of=Card) if lock else query)).one_or_none()
    if found is None:
        raise NotFound("card")
    loaded = Loaded(*found)
    if lock:
        # A new statement after the lock: it sees what a racing twin committed while we waited
        # (the joined rows above are from before the wait), its answer included.
        stored = select(CardTransactionEvent).where(
            CardTransactionEvent.network_key == request.network_key
        )
        previous, previous_amount, previous_card, loaded.deposit_account_id = (
            await session.execute(
                select(
                    stored.with_only_columns(CardTransactionEvent.response).scalar_subquery(),
                    stored.with_only_columns(CardTransactionEvent.amount).scalar_subquery(),
                    stored.join(
                        CardTransaction,
                        CardTransaction.id == CardTransactionEvent.transaction_id,
                    )
                    .with_only_columns(CardTransaction.card_id)
                    .scalar_subquery(),
                    select(PartnerBalance.ledger_account_id)
                    .where(
                        PartnerBalance.program_id == program_id,
                        PartnerBalance.type == "DEPOSIT",
                        PartnerBalance.currency == loaded.balance.currency,
                    )
                    .scalar_subquery(),
                )
            )
        ).one()
        _check_reuse(previous, previous_amount, previous_card, request, loaded.card.id)
        loaded.previous = previous
    return loaded


def _card_ref(
    services: CardServices, request: AuthorizationRequest
) -> tuple[str | None, bytes | None]:
    """(card id, None) or (None, the PAN's lookup hash): how a message names its card."""
    if request.card_id is not None and is_valid("card", request.card_id):
        return request.card_id, None
    if request.pan is not None:
        return None, services.vault.lookup_hash(request.pan)
    raise NotFound("card")


def _check_reuse(
    previous: dict[str, Any] | None,
    previous_amount: int | None,
    previous_card: str | None,
    request: AuthorizationRequest,
    card_id: str,
) -> None:
    """A first answer is a retransmission's only when it was for the same card and amount."""
    if previous is not None and (previous_amount, previous_card) != (request.amount, card_id):
        raise reused_ids()


@dataclass(frozen=True, slots=True)
class Legs:
    """The ledger accounts a card transaction moves money between, each pair debit first.

    Without a partner deposit: the user's balance pays the network. With one (seed 003): the
    deposit pays the network, and the user's balance pays the partner back for it. The deposit leg
    goes first: seed 003 charges the deposit, then locks the user's funds."""

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


async def _move(
    session: AsyncSession,
    row: CardTransaction,
    legs: Legs,
    amount: int,
    *,
    code: str,
    pending: bool,
    user_overdraft: int = 0,
) -> list[LedgerTransfer]:
    """Move (or hold) `amount` on every leg: all legs or none. Returns the transfers in leg
    order; raises Refused naming the side that could not pay. A refused ledger transfer changes
    nothing, so only two legs need a savepoint. `user_overdraft` lets the user leg go that far
    below zero (a smaller hold replacing a larger one on a balance a fee took below zero)."""
    moved = []
    async with session.begin_nested() if len(legs.pairs) > 1 else contextlib.nullcontext():
        for index, (debit, credit) in enumerate(legs.pairs):
            try:
                transfer = await ledger.transfer(
                    session,
                    program_id=row.program_id,
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=amount,
                    currency=row.billing_currency,
                    code=code,
                    pending=pending,
                    details={"transaction_id": row.id},
                    overdraft_limit=user_overdraft if index == len(legs.pairs) - 1 else 0,
                )
            except ledger.Overdraft:
                deposit_side = legs.deposit and index == 0
                raise Refused(
                    "PARTNER_DEPOSIT_INSUFFICIENT" if deposit_side else "INSUFFICIENT_FUNDS"
                ) from None
            moved.append(transfer)
    return moved


def set_holds(row: Any, holds: list[Any]) -> None:
    """Remember the pending transfers of a hold: the user leg's, after the deposit leg's when
    there is one."""
    row.hold_transfer_id = holds[-1].id
    row.deposit_hold_transfer_id = holds[0].id if len(holds) > 1 else None


def forget_holds(row: Any) -> None:
    row.hold_transfer_id = row.deposit_hold_transfer_id = None


def hold_ids(row: Any) -> list[str]:
    return [h for h in (row.deposit_hold_transfer_id, row.hold_transfer_id) if h is not None]


def _spend(request: AuthorizationRequest, amount: int, currency: str) -> controls.Transaction:
    """The transaction as spend controls see it: in the balance's currency."""
    return controls.Transaction(
        amount=amount,
        currency=currency,
        channel=request.channel,
        entry_mode=request.entry_mode,
        mcc=str(request.merchant.get("mcc", "0000")),
        country=str(request.merchant.get("country", "")),
    )


async def _check_pin(
    session: AsyncSession,
    services: CardServices,
    card: Any,
    request: AuthorizationRequest,
    pan: str | None,
) -> controls.Decision:
    """The PIN block against the card's PIN. Only a wrong PIN counts towards the lock: a block
    no usable key can read says the processor and the issuer disagree on keys (or the block is
    another card's), which is not the cardholder's try. A verdict that changes the card (its
    failure count, its lock) goes through the card's ORM row, in this transaction."""
    assert request.pin_block is not None
    assert request.pin_block_format is not None
    keys = await zone_pin_keys.usable_keys(session, services.keyring, card.program_id)
    verdict = PinVerdict.NO_KEY
    if keys:
        verdict = verify_pin_block(
            request.pin_block,
            request.pin_block_format,
            pan or request.pan or await services.vault.decrypt(session, card),
            keys,
            keyring=services.keyring,
            pin_scope=card.pin_scope or card.id,
            expected_hash=card.pin_hash,
        )
    if verdict is PinVerdict.NO_KEY:
        return controls.Decision.decline("86", "NO_ZONE_PIN_KEY")
    if verdict is PinVerdict.UNREADABLE:
        return controls.Decision.decline("81", "PIN_BLOCK_UNREADABLE")
    if verdict is PinVerdict.MATCH and card.pin_failures == 0:
        return controls.Decision.approve()
    row = await session.get(Card, card.id)
    assert row is not None
    if verdict is PinVerdict.MATCH:
        row.pin_failures = 0
        return controls.Decision.approve()
    row.pin_failures += 1
    if row.pin_failures >= PIN_TRIES:
        await lifecycle.lock(session, row, 6, actor="network")
        return controls.Decision.decline("75", "PIN_TRIES_EXCEEDED")
    return controls.Decision.decline("55", "WRONG_PIN")


def _new_row(
    card: Any,
    request: AuthorizationRequest,
    billing_amount: int,
    billing_currency: str,
    decision: controls.Decision,
    deposit_account_id: str | None,
    kind: str = "AUTHORIZATION",
    make: Callable[..., Any] = CardTransaction,
) -> CardTransaction:
    """A transaction as declined by `decision` (or DECLINED, to be approved by its caller once
    the money moved). `make`: the model, or the authorization path's plain rows."""
    return make(
        id=new_id("txn"),
        program_id=card.program_id,
        card_id=card.id,
        balance_id=card.balance_id,
        user_id=card.user_id,
        kind=kind,
        status="DECLINED",
        held_amount=0,
        settled_amount=0,
        amount=request.amount,
        currency=request.currency,
        channel=request.channel,
        entry_mode=request.entry_mode,
        merchant=request.merchant,
        response_code=decision.response_code,
        decline_reason=decision.rule,
        billing_amount=billing_amount,
        billing_currency=billing_currency,
        deposit_account_id=deposit_account_id,
    )


def response_of(transaction: CardTransaction, available: int | None) -> dict[str, Any]:
    return {
        "authorization_id": transaction.id,
        "approved": transaction.status == "PENDING",
        "response_code": transaction.response_code,
        "authorization_code": transaction.authorization_code,
        "decline_reason": transaction.decline_reason,
        "held_amount": transaction.held_amount,
        "currency": transaction.billing_currency or transaction.currency,
        "available_balance": available,
    }


class NetworkKeyRefused(Exception):
    """The network key the message came with is no longer good (revoked, or its program
    suspended): found by the authorization's own read, for the caller to answer as the API key
    check answers it."""


# Each program's time zone as last read, for the spend periods the read asks for; a change is
# seen in the read itself, which then costs one more statement.
_TIMEZONES: dict[str, str] = {}


async def authorize(
    session: AsyncSession,
    services: CardServices,
    *,
    program_id: str,
    request: AuthorizationRequest,
    key_id: str | None = None,
    touch_after: timedelta = timedelta(seconds=60),
    connection: Any = None,
    unlocked: bool = False,
) -> dict[str, Any]:
    """Decide an authorization and record it: four round trips (BEGIN, the read, the write,
    COMMIT) whatever the card, program and fees; a PIN, a partner deposit with a low-balance
    threshold or a program's new time zone add one each. `key_id`: the network key to check
    in the read (raises NetworkKeyRefused), when the caller has not checked it. `connection`:
    an asyncpg connection of the caller's, or the lean path's pool (`store.Pooled`, with
    `unlocked`), when `session` is `store.NO_SESSION`; otherwise the session's own is used.

    `unlocked`: `connection` is in no transaction, and the authorization takes two round trips,
    each a transaction of its own: the read, without the card's lock, and the write, which
    locks the card and records the decision only if nothing it was made on has changed since
    (else it reads and decides again, store.decided_afresh). What would need more (a PIN,
    a time zone change, a deposit's low-balance threshold) raises store.NeedsSession before
    anything is written."""
    if connection is None:
        connection = await driver_connection(session)
    return await store.decided_afresh(
        functools.partial(
            _authorize,
            session,
            services,
            connection,
            program_id=program_id,
            request=request,
            key_id=key_id,
            touch_after=touch_after,
            unlocked=unlocked,
        ),
        unlocked,
    )


async def _authorize(
    session: AsyncSession,
    services: CardServices,
    connection: Any,
    *,
    program_id: str,
    request: AuthorizationRequest,
    key_id: str | None,
    touch_after: timedelta,
    unlocked: bool,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    card_id, pan_hash = _card_ref(services, request)
    timezone = _TIMEZONES.get(program_id, "UTC")
    starts = controls.period_starts(timezone, now)
    context = await store.read(
        connection,
        key_id=key_id,
        program_id=program_id,
        card_id=card_id,
        pan_hash=pan_hash,
        network_key=request.network_key,
        currency=request.currency,
        period_starts=starts,
        at=now,
        touch_after=touch_after,
        lock=not unlocked,
    )
    if not context.key_ok:
        raise NetworkKeyRefused
    card, program = context.card, context.program
    if card is None:
        raise NotFound("card")
    _check_reuse(context.previous, context.previous_amount, context.previous_card, request, card.id)
    if context.previous is not None:
        return context.previous
    spent = controls.as_spent(context.spent or [])
    checked = None
    if unlocked:
        if context.deposit_threshold is not None:
            raise store.NeedsSession("deposit threshold")  # warned in the transaction
        assert context.card_version is not None
        checked = store.Unlocked(
            context.card_version, starts, sum(entry[3] for entry in context.spent or [])
        )
    if program.timezone != timezone:
        _TIMEZONES[program_id] = program.timezone
        starts = controls.period_starts(program.timezone, now)
        spent = await controls.spent_so_far(session, card, program, now)

    currency = context.balance_currency
    billing = convert_at(
        context.fx_rate, program.fx_markup_bps, request.amount, request.currency, currency
    )
    transaction = _spend(request, billing if billing is not None else request.amount, currency)
    decision = controls.evaluate(card, transaction, program=program, spent=spent, now=now)
    pan = None
    if decision.approved and request.cvv2 is not None:
        pan = await services.vault.decrypt(session, card)
    if decision.approved and request.expiry is not None and request.expiry != expiry_yymm(card):
        decision = controls.Decision.decline("54", "EXPIRY_MISMATCH")
    if (
        decision.approved
        and request.cvv2 is not None
        and request.cvv2 != card_cvv2(services, card, pan or "")
    ):
        decision = controls.Decision.decline("N7", "CVV2_MISMATCH")
    if decision.approved and request.pin_block is not None:
        decision = await _check_pin(session, services, card, request, pan)
    if decision.approved and billing is None:
        decision = controls.Decision.decline("12", "NO_FX_RATE")

    row = _new_row(
        card,
        request,
        transaction.amount,
        currency,
        decision,
        context.deposit_account,
        make=_PLAIN_TRANSACTION,
    )
    if decision.approved:
        approved = await _approve(
            session,
            connection,
            row,
            card,
            context,
            transaction,
            request.network_key,
            starts,
            checked,
        )
        if approved is not None:
            written, response = approved
            if context.deposit_threshold is not None and balances.crosses(
                context.deposit_threshold,
                (written.deposit_available or 0) + transaction.amount,
                written.deposit_available or 0,
            ):
                assert written.deposit_available is not None
                await balances.warn_if_low(
                    session,
                    await _deposit(session, context),
                    written.deposit_available + transaction.amount,
                    after=written.deposit_available,
                )
            return response
    response = response_of(row, context.available)
    await store.write(
        connection,
        transaction=row,
        message=_message(row, response, request.network_key),
        event=_decided(row, card),
        user_account=context.user_account,
        deposit_account=context.deposit_account,
        unlocked=checked,
    )
    return response


async def _approve(
    session: AsyncSession,
    connection: Any,
    row: CardTransaction,
    card: Any,
    context: store.Context,
    transaction: controls.Transaction,
    network_key: str,
    starts: dict[str, datetime],
    unlocked: store.Unlocked | None,
) -> tuple[store.Written, dict[str, Any]] | None:
    """Hold the amount (and the transaction's fees) and record the approval, in the one write:
    what it did and the answer; None, with `row` declined 51 and nothing written, when a leg
    cannot pay."""
    legs = await legs_of(session, row, context.user_account)
    balance = _BalanceFacts(card.balance_id, card.program_id, context.balance_currency)
    fee_lines = await fees.transaction_fees(
        session, row, card, balance, versions=context.fee_versions
    )
    moves = ledger.Linked()
    holds = [
        moves.transfer(
            program_id=row.program_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=transaction.amount,
            currency=row.billing_currency,
            code="card_authorization",
            pending=True,
            details={"transaction_id": row.id},
        )
        for debit, credit in legs.pairs
    ]
    set_holds(row, holds)
    await fees.hold_linked(session, moves, fee_lines, legs.user_account)
    row.status, row.response_code, row.held_amount = "PENDING", "00", transaction.amount
    row.authorization_code = f"{secrets.randbelow(10**6):06d}"
    response = response_of(row, None)
    written = await store.write(
        connection,
        transaction=row,
        message=_message(row, response, network_key),
        event=_decided(row, card),
        moves=moves,
        fee_lines=fee_lines,
        user_account=context.user_account,
        deposit_account=context.deposit_account,
        spend=controls.spend_keys(transaction, context.program, starts),
        spend_amount=transaction.amount,
        unlocked=unlocked,
    )
    if written.refused_account is None:
        # The write put the same figure into the stored answer.
        response["available_balance"] = written.available
        return written, response
    refused_deposit = written.refused_account == context.deposit_account
    forget_holds(row)
    row.status, row.held_amount, row.authorization_code = "DECLINED", 0, None
    row.response_code = "51"
    row.decline_reason = "PARTNER_DEPOSIT_INSUFFICIENT" if refused_deposit else "INSUFFICIENT_FUNDS"
    return None


_PLAIN_TRANSACTION = plain(CardTransaction)
_PLAIN_MESSAGE = plain(CardTransactionEvent)
_PLAIN_EVENT = plain(Event)


@dataclass(frozen=True, slots=True)
class _BalanceFacts:
    """What a transaction's fee lines need of its balance."""

    id: str
    program_id: str
    currency: str


async def _deposit(session: AsyncSession, context: store.Context) -> PartnerBalance:
    deposit = await session.get(PartnerBalance, context.deposit_balance)
    assert deposit is not None
    return deposit


def _message(
    row: CardTransaction, response: dict[str, Any], network_key: str
) -> CardTransactionEvent:
    """The network message of an authorization, with its answer as sent."""
    return _PLAIN_MESSAGE(
        id=new_id("tev"),
        program_id=row.program_id,
        transaction_id=row.id,
        kind="authorization",
        network_key=network_key,
        amount=row.amount,
        response=response,
        ledger_transfer_id=row.hold_transfer_id,
    )


def _decided(row: CardTransaction, card: Any) -> Event:
    return new_event(
        make=_PLAIN_EVENT,
        program_id=row.program_id,
        object_id=row.id,
        data=AuthorizationDecided(
            transaction_id=row.id,
            card_id=card.id,
            approved=row.status == "PENDING",
            response_code=row.response_code,
            decline_reason=row.decline_reason,
            amount=row.amount,
            currency=row.currency,
        ),
    )


async def _answer(
    session: AsyncSession,
    row: CardTransaction,
    *,
    kind: str,
    network_key: str,
    amount: int,
    ledger_transfer_id: str | None,
    decline: tuple[str, str] | None = None,
    available: int | None = None,
) -> dict[str, Any]:
    """Store a network message with its answer, as sent, for retransmissions. `available` is the
    balance's available amount when the caller already knows it."""
    if available is None:
        available = (await ledger.totals(session, await _user_account(session, row))).available
    response = response_of(row, available)
    if kind != "authorization":
        response["approved"] = decline is None
    if decline is not None:
        response["response_code"], response["decline_reason"] = decline
    session.add(
        CardTransactionEvent(
            program_id=row.program_id,
            transaction_id=row.id,
            kind=kind,
            network_key=network_key,
            amount=amount,
            response=response,
            ledger_transfer_id=ledger_transfer_id,
        )
    )
    try:
        await session.flush()
    except IntegrityError as exc:
        # Only a message whose network ids another card's message already used gets here (a
        # retransmission waits on the card's lock and finds its answer): refuse it whole.
        raise CardcoreError(
            "DUPLICATE_REQUEST_ID", "These network ids were already used for another message."
        ) from exc
    return response


async def _after(
    session: AsyncSession,
    row: CardTransaction,
    *,
    kind: str,
    network_key: str,
    amount: int,
    ledger_transfer_id: str | None,
    decline: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Answer a follow-up message and tell partners (`authorization.updated`)."""
    response = await _answer(
        session,
        row,
        kind=kind,
        network_key=network_key,
        amount=amount,
        ledger_transfer_id=ledger_transfer_id,
        decline=decline,
    )
    record_event(
        session,
        program_id=row.program_id,
        object_id=row.id,
        data=AuthorizationUpdated(
            transaction_id=row.id,
            kind=kind,
            status=row.status,
            amount=amount,
            held_amount=row.held_amount,
        ),
    )
    return response


async def _user_account(session: AsyncSession, row: CardTransaction) -> str:
    """The ledger account of the transaction's balance."""
    account = await session.scalar(
        select(Balance.ledger_account_id).where(Balance.id == row.balance_id)
    )
    assert account is not None
    return account


async def post_without_authorization(
    session: AsyncSession,
    services: CardServices,
    *,
    program_id: str,
    request: AuthorizationRequest,
    kind: str,
) -> dict[str, Any]:
    """A FORCE_POST (a clearing the network settled with no authorization: offline terminals,
    stand-in) or a REFUND that names no purchase. The network has already settled either, so
    neither asks the card's state or controls; a force post the balance cannot cover is recorded
    DECLINED 51 and left to ops and the dispute process — the ledger never goes below zero."""
    loaded = await _load(session, services, program_id, request)
    if loaded.previous is not None:
        return loaded.previous
    card, balance, program = loaded.card, loaded.balance, loaded.program
    billing = await convert(session, program, request.amount, request.currency, balance.currency)
    decision = controls.Decision.approve()
    if billing is None:
        decision = controls.Decision.decline("12", "NO_FX_RATE")
    row = _new_row(
        card,
        request,
        billing or 0,
        balance.currency,
        decision,
        loaded.deposit_account_id,
        kind=kind,
    )
    session.add(row)
    moved, decline, fee_lines = None, None, []
    if billing is None:
        decline = ("12", "NO_FX_RATE")
    else:
        legs = await legs_of(session, row, balance.ledger_account_id)
        if kind == "REFUND":
            legs = legs.reversed()
        try:
            transfers = await _move(
                session, row, legs, billing, code=f"card_{kind.lower()}", pending=False
            )
            moved = transfers[-1].id
        except Refused as refused:
            row.response_code, row.decline_reason = "51", refused.reason
            decline = ("51", refused.reason)
        else:
            row.status, row.settled_amount, row.response_code = "SETTLED", billing, "00"
            if kind == "FORCE_POST":
                spend = _spend(request, billing, balance.currency)
                await controls.record_spend(session, card, program, spend, datetime.now(UTC))
                fee_lines = await fees.transaction_fees(session, row, card, balance)
                await fees.charge_each(session, fee_lines, balance.ledger_account_id)
    response = await _after(
        session,
        row,
        kind=kind.lower(),
        network_key=request.network_key,
        amount=request.amount,
        ledger_transfer_id=moved,
        decline=decline,
    )
    session.add_all(fee_lines)  # after the transaction's row, which they point at
    return response


async def balance_inquiry(
    session: AsyncSession,
    services: CardServices,
    *,
    program_id: str,
    card_id: str | None,
    pan: str | None,
) -> dict[str, Any]:
    """What the card can spend now. A card that could not authorize answers with its decline code
    and no balance, so an inquiry cannot probe a locked or closed card's money."""
    request = AuthorizationRequest(
        amount=0,
        currency="",
        channel="",
        entry_mode="",
        merchant={},
        network_key="",
        card_id=card_id,
        pan=pan,
    )
    loaded = await _load(session, services, program_id, request, lock=False)
    card, balance = loaded.card, loaded.balance
    status = controls.status_decision(card, datetime.now(UTC))
    if status is not None:
        return {
            "card_id": card.id,
            "response_code": status.response_code,
            "available_balance": None,
            "currency": balance.currency,
        }
    totals = await ledger.totals(session, balance.ledger_account_id)
    return {
        "card_id": card.id,
        "response_code": "00",
        "available_balance": totals.available,
        "currency": balance.currency,
    }
