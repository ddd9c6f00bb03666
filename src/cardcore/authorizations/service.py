"""The authorization engine: decide a card transaction and hold the money; force posts,
refunds naming no purchase, and balance inquiries.

An authorization finds the card (by id, or by PAN through the vault's keyed hash), asks
`cards/decision.decide` — the one place that approves or declines: the card's state and spend
controls, the expiry, CVV2 and PIN presented, the FX rate — then holds the amount on the card's
balance with a pending ledger transfer (holds.py), which the database refuses if it would
overdraw, so two authorizations racing for the last euro cannot both win. Declines are
transactions too. The message and its answer are stored for retransmissions (messages.py); what
follows an authorization is in follow_ups.py, the release of holds never cleared in expiry.py,
currency conversion in fx.py.

The authorization is on the hot path: one read and one write (store.py), in the request's
transaction with the card locked by the read, or — on the lean path's own pool — each a
transaction of its own, the write recording the decision only if the card is as read.
"""

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.authorizations import repository, store
from cardcore.authorizations.fx import convert, convert_at
from cardcore.authorizations.holds import Refused, forget_holds, legs_of, move, set_holds
from cardcore.authorizations.messages import (
    AuthorizationRequest,
    NetworkKeyRefused,
    authorization_message,
    check_reuse,
    decided_event,
    record_answer,
    response_of,
)
from cardcore.balances import service as balances
from cardcore.cards import controls
from cardcore.cards.decision import decide
from cardcore.cards.response_codes import ResponseCode
from cardcore.cards.service import CardServices
from cardcore.db import driver_connection
from cardcore.fees import service as fees
from cardcore.fees import transaction_fees
from cardcore.kit.errors import NotFound
from cardcore.kit.rows import plain
from cardcore.ledger import service as ledger
from cardcore.models import (
    Balance,
    Card,
    CardTransaction,
    CardTransactionEvent,
    PartnerBalance,
    Program,
    TransactionStatus,
)
from cardcore.models.ids import is_valid, new_id


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
    card_id, pan_hash = _card_ref(services, request)
    query = repository.message_card(program_id, card_id=card_id, pan_hash=pan_hash)
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
                    repository.deposit_account(program_id, loaded.balance.currency),
                )
            )
        ).one()
        check_reuse(previous, previous_amount, previous_card, request, loaded.card.id)
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


def _new_row(
    card: Any,
    request: AuthorizationRequest,
    billing_amount: int,
    billing_currency: str,
    decision: controls.Decision,
    deposit_account_id: str | None,
    kind: str = "AUTHORIZATION",
    make: Callable[..., CardTransaction] = CardTransaction,
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
        status=TransactionStatus.DECLINED,
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
    check_reuse(context.previous, context.previous_amount, context.previous_card, request, card.id)
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
    decision = await decide(
        session,
        services,
        card,
        transaction,
        program=program,
        spent=spent,
        now=now,
        presented=request,
        converted=billing is not None,
    )

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
        message=authorization_message(row, response, request.network_key),
        event=decided_event(row, card),
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
    fee_lines = await transaction_fees.lines_for(
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
    row.status, row.held_amount = TransactionStatus.PENDING, transaction.amount
    row.response_code = ResponseCode.APPROVED
    row.authorization_code = f"{secrets.randbelow(10**6):06d}"
    response = response_of(row, None)
    written = await store.write(
        connection,
        transaction=row,
        message=authorization_message(row, response, network_key),
        event=decided_event(row, card),
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
    row.status, row.held_amount, row.authorization_code = TransactionStatus.DECLINED, 0, None
    row.response_code = ResponseCode.INSUFFICIENT_FUNDS
    row.decline_reason = "PARTNER_DEPOSIT_INSUFFICIENT" if refused_deposit else "INSUFFICIENT_FUNDS"
    return None


_PLAIN_TRANSACTION = plain(CardTransaction)


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
        decision = controls.Decision.decline(ResponseCode.INVALID_TRANSACTION, "NO_FX_RATE")
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
        decline = (ResponseCode.INVALID_TRANSACTION, "NO_FX_RATE")
    else:
        legs = await legs_of(session, row, balance.ledger_account_id)
        if kind == "REFUND":
            legs = legs.reversed()
        try:
            transfers = await move(
                session, row, legs, billing, code=f"card_{kind.lower()}", pending=False
            )
            moved = transfers[-1].id
        except Refused as refused:
            row.response_code = ResponseCode.INSUFFICIENT_FUNDS
            row.decline_reason = refused.reason
            decline = (ResponseCode.INSUFFICIENT_FUNDS, refused.reason)
        else:
            row.status, row.settled_amount = TransactionStatus.SETTLED, billing
            row.response_code = ResponseCode.APPROVED
            if kind == "FORCE_POST":
                spend = _spend(request, billing, balance.currency)
                await controls.record_spend(session, card, program, spend, datetime.now(UTC))
                fee_lines = await transaction_fees.lines_for(session, row, card, balance)
                await transaction_fees.charge_each(session, fee_lines, balance.ledger_account_id)
    response = await record_answer(
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
        "response_code": ResponseCode.APPROVED,
        "available_balance": totals.available,
        "currency": balance.currency,
    }
