"""Whether a card may pay: the one place an authorization is approved or declined.

`decide` asks, in order: the card's state and spend controls (`controls.evaluate`), then what the
message presented to prove the card — its expiry date, its CVV2, its PIN block — and last whether
the amount could be converted into the balance's currency. The first that fails declines, with
its ISO 8583 response code and the rule's name. Whether the balance can pay is not asked here:
the ledger refuses the hold (51) when it cannot.
"""

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards import controls, lifecycle, zone_pin_keys
from cardcore.cards.controls import Decision
from cardcore.cards.pin_blocks import PinVerdict, verify_pin_block
from cardcore.cards.response_codes import ResponseCode
from cardcore.cards.service import CardServices, card_cvv2, expiry_yymm
from cardcore.models import Card

# Wrong PINs in a row that lock the card (lock reason 6).
PIN_TRIES = 3


class Presented(Protocol):
    """What a card message may carry to prove the card (an authorization's request)."""

    @property
    def pan(self) -> str | None: ...
    @property
    def expiry(self) -> str | None: ...  # YYMM
    @property
    def cvv2(self) -> str | None: ...
    @property
    def pin_block(self) -> bytes | None: ...
    @property
    def pin_block_format(self) -> int | None: ...


async def decide(
    session: AsyncSession,
    services: CardServices,
    card: Any,
    transaction: controls.Transaction,
    *,
    program: controls.ProgramRules,
    spent: dict[tuple[str, str], tuple[int, int]],
    now: datetime,
    presented: Presented,
    converted: bool,
) -> Decision:
    """Approve or decline `transaction` on `card`. `converted`: whether the amount could be
    converted into the balance's currency (`transaction` then holds the converted amount)."""
    decision = controls.evaluate(card, transaction, program=program, spent=spent, now=now)
    if not decision.approved:
        return decision
    pan = None
    if presented.cvv2 is not None:
        pan = await services.vault.decrypt(session, card)
    if presented.expiry is not None and presented.expiry != expiry_yymm(card):
        return Decision.decline(ResponseCode.EXPIRED_CARD, "EXPIRY_MISMATCH")
    if presented.cvv2 is not None and presented.cvv2 != card_cvv2(services, card, pan or ""):
        return Decision.decline(ResponseCode.CVV2_MISMATCH, "CVV2_MISMATCH")
    if presented.pin_block is not None:
        decision = await _pin(session, services, card, presented, pan)
        if not decision.approved:
            return decision
    if not converted:
        return Decision.decline(ResponseCode.INVALID_TRANSACTION, "NO_FX_RATE")
    return decision


async def _pin(
    session: AsyncSession,
    services: CardServices,
    card: Any,
    presented: Presented,
    pan: str | None,
) -> Decision:
    """The PIN block against the card's PIN. Only a wrong PIN counts towards the lock: a block
    no usable key can read says the processor and the issuer disagree on keys (or the block is
    another card's), which is not the cardholder's try. A verdict that changes the card (its
    failure count, its lock) goes through the card's ORM row, in this transaction."""
    assert presented.pin_block is not None
    assert presented.pin_block_format is not None
    keys = await zone_pin_keys.usable_keys(session, services.keyring, card.program_id)
    verdict = PinVerdict.NO_KEY
    if keys:
        verdict = verify_pin_block(
            presented.pin_block,
            presented.pin_block_format,
            pan or presented.pan or await services.vault.decrypt(session, card),
            keys,
            keyring=services.keyring,
            pin_scope=card.pin_scope or card.id,
            expected_hash=card.pin_hash,
        )
    if verdict is PinVerdict.NO_KEY:
        return Decision.decline(ResponseCode.CANNOT_VERIFY_PIN, "NO_ZONE_PIN_KEY")
    if verdict is PinVerdict.UNREADABLE:
        return Decision.decline(ResponseCode.PIN_CRYPTOGRAPHIC_ERROR, "PIN_BLOCK_UNREADABLE")
    if verdict is PinVerdict.MATCH and card.pin_failures == 0:
        return Decision.approve()
    row = await session.get(Card, card.id)
    assert row is not None
    if verdict is PinVerdict.MATCH:
        row.pin_failures = 0
        return Decision.approve()
    row.pin_failures += 1
    if row.pin_failures >= PIN_TRIES:
        await lifecycle.lock(session, row, 6, actor="network")
        return Decision.decline(ResponseCode.PIN_TRIES_EXCEEDED, "PIN_TRIES_EXCEEDED")
    return Decision.decline(ResponseCode.INCORRECT_PIN, "WRONG_PIN")
