"""Network messages and their answers: what the card processor sends, the answer each gets, and
retransmissions.

Every network message carries its network ids, unique per program and kind of message, and is
stored with its answer as sent (`card_transaction_events`), which is also its audit record. A
retransmission — the same ids, card and amount — gets that first answer back and never moves
money twice; the same ids on a different message are refused.
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.authorizations.events import AuthorizationDecided, AuthorizationUpdated
from cardcore.authorizations.holds import user_account
from cardcore.kit.errors import CardcoreError
from cardcore.kit.outbox import new_event, record_event
from cardcore.kit.rows import plain
from cardcore.ledger import service as ledger
from cardcore.models import CardTransaction, CardTransactionEvent, Event, TransactionStatus
from cardcore.models.ids import new_id

# The authorization path's plain rows (`kit/rows.plain`) of a network message and an event.
PLAIN_MESSAGE = plain(CardTransactionEvent)
PLAIN_EVENT = plain(Event)


@dataclass
class AuthorizationRequest:
    """A card message as the engine reads it, from the network route or the sandbox."""

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


class NetworkKeyRefused(Exception):
    """The network key the message came with is no longer good (revoked, or its program
    suspended): found by the message's own read, for the caller to answer as the API key check
    answers it."""


def reused_ids() -> CardcoreError:
    return CardcoreError(
        "DUPLICATE_REQUEST_ID", "These network ids were already used for a different message."
    )


def check_reuse(
    previous: dict[str, Any] | None,
    previous_amount: int | None,
    previous_card: str | None,
    request: AuthorizationRequest,
    card_id: str,
) -> None:
    """A first answer is a retransmission's only when it was for the same card and amount."""
    if previous is not None and (previous_amount, previous_card) != (request.amount, card_id):
        raise reused_ids()


def response_of(transaction: CardTransaction, available: int | None) -> dict[str, Any]:
    return {
        "authorization_id": transaction.id,
        "approved": transaction.status == TransactionStatus.PENDING,
        "response_code": transaction.response_code,
        "authorization_code": transaction.authorization_code,
        "decline_reason": transaction.decline_reason,
        "held_amount": transaction.held_amount,
        "currency": transaction.billing_currency or transaction.currency,
        "available_balance": available,
    }


def authorization_message(
    row: CardTransaction, response: dict[str, Any], network_key: str
) -> CardTransactionEvent:
    """The network message of an authorization, with its answer as sent."""
    return PLAIN_MESSAGE(
        id=new_id("tev"),
        program_id=row.program_id,
        transaction_id=row.id,
        kind="authorization",
        network_key=network_key,
        amount=row.amount,
        response=response,
        ledger_transfer_id=row.hold_transfer_id,
    )


def decided_event(row: CardTransaction, card: Any) -> Event:
    """`authorization.decided`, for the outbox."""
    return new_event(
        make=PLAIN_EVENT,
        program_id=row.program_id,
        object_id=row.id,
        data=AuthorizationDecided(
            transaction_id=row.id,
            card_id=card.id,
            approved=row.status == TransactionStatus.PENDING,
            response_code=row.response_code,
            decline_reason=row.decline_reason,
            amount=row.amount,
            currency=row.currency,
        ),
    )


async def record_answer(
    session: AsyncSession,
    row: CardTransaction,
    *,
    kind: str,
    network_key: str,
    amount: int,
    ledger_transfer_id: str | None,
    decline: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Store a message that is not an authorization (a force post, a refund naming no purchase)
    with its answer, as sent, for retransmissions, and tell partners (`authorization.updated`).
    `decline`: the response code and reason it was declined with."""
    available = (await ledger.totals(session, await user_account(session, row))).available
    response = response_of(row, available)
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
