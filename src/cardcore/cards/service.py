"""Products and cards: issuance, the physical journey, activation, PIN, CVV, reveal, holder
checks. The rules, with no HTTP."""

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.balances import service as balances
from cardcore.balances.repository import BalanceRepository
from cardcore.cards import controls, lifecycle, security
from cardcore.cards.events import CardCreated, CardFulfillmentChanged
from cardcore.cards.processors import IssuingProcessor
from cardcore.cards.repository import CardRepository, ProductRepository
from cardcore.cards.security import CVV2_SERVICE_CODE, check_pin, cvk_pair, cvv, pin_hash
from cardcore.cards.vault import PanVault
from cardcore.customers import reference
from cardcore.customers.embossing import embossing_names
from cardcore.customers.repository import CorporationRepository, UserRepository
from cardcore.fees import service as fees
from cardcore.kit.crypto import Keyring
from cardcore.kit.errors import CardcoreError, validation_error
from cardcore.kit.outbox import record_event
from cardcore.ledger import service as ledger
from cardcore.models import (
    Balance,
    Card,
    CardProduct,
    CardStatus,
    CorporationEmployee,
    CustomerStatus,
    FulfillmentStatus,
    Program,
    User,
    VerificationStatus,
)
from cardcore.models.ids import new_id

NETWORKS = ("VISA", "MASTERCARD")
FORM_FACTORS = ("VIRTUAL", "PHYSICAL")
PRODUCT_KINDS = ("DEBIT", "PREPAID", "GIFT")
PAN_ATTEMPTS = 10
HOLDER_CHECKS_PER_HOUR = 5
STRONG_AUTH_WINDOW = timedelta(minutes=5)

# A physical card's production and delivery: which step may follow which, and through which
# route.
FULFILLMENT: dict[str, dict[FulfillmentStatus, frozenset[FulfillmentStatus]]] = {
    "process": {FulfillmentStatus.ORDERED: frozenset({FulfillmentStatus.ISSUANCE_IN_PROGRESS})},
    "manufacturing": {
        FulfillmentStatus.ISSUANCE_IN_PROGRESS: frozenset(
            {FulfillmentStatus.MANUFACTURED, FulfillmentStatus.MANUFACTURING_FAILED}
        )
    },
    "delivery": {
        FulfillmentStatus.MANUFACTURED: frozenset({FulfillmentStatus.SHIPPED}),
        FulfillmentStatus.SHIPPED: frozenset(
            {FulfillmentStatus.DELIVERED, FulfillmentStatus.RETURNED}
        ),
    },
}
# Where a physical card must be to be activated: on its way, or arrived.
ACTIVATABLE = (FulfillmentStatus.SHIPPED, FulfillmentStatus.DELIVERED)


@dataclass(frozen=True)
class CardServices:
    """What card operations need beyond the session: keys, the vault and the processor."""

    keyring: Keyring
    vault: PanVault
    processor: IssuingProcessor
    cvk: tuple[bytes, bytes]


# -- products ------------------------------------------------------------------------------------


async def create_product(
    session: AsyncSession, *, program_id: str, values: dict[str, Any]
) -> CardProduct:
    bin_, length = values["bin"], values.get("pan_length") or 16
    if not bin_.isdigit() or len(bin_) not in (6, 8):
        raise validation_error("bin", "INVALID_BIN", "A BIN is 6 or 8 digits.")
    if not 13 <= length <= 19 or length < len(bin_) + 2:
        raise validation_error(
            "pan_length", "INVALID_LENGTH", "PANs are 13–19 digits, longer than the BIN."
        )
    allowed = await session.scalar(select(Program.currencies).where(Program.id == program_id))
    if values["currency"] not in (allowed or []):
        raise CardcoreError("CURRENCY_NOT_ALLOWED")
    if values["kind"] == "GIFT":
        if not values.get("max_load"):
            raise validation_error("max_load", "REQUIRED", "A gift product needs a maximum load.")
    elif not values.get("kyc_required", True):
        raise validation_error("kyc_required", "NOT_WAIVABLE", "Only gift products may waive KYC.")
    defaults = controls.parse(values.get("default_controls"))
    maxima = await session.scalar(select(Program.control_maxima).where(Program.id == program_id))
    controls.check_program_maxima(defaults, maxima or [])
    values = {**values, "default_controls": defaults.model_dump(mode="json", exclude_none=True)}
    product = CardProduct(program_id=program_id, **{**values, "pan_length": length})
    session.add(product)
    await session.flush()
    return product


# -- issuance ------------------------------------------------------------------------------------


@dataclass
class IssueRequest:
    type: str
    product_id: str
    user_id: str
    balance_id: str | None = None
    corporation_id: str | None = None
    embossing_name: str | None = None
    delivery_address: dict[str, Any] | None = None
    pin: str | None = None
    # Asynchronous issuance: the PIN already hashed (hex) under `pin_scope` (see sealed_pin).
    pin_hash: str | None = None
    pin_scope: str | None = None
    gift_amount: int | None = None
    gift_recipient_name: str | None = None
    gift_message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def expiry_after(validity_months: int, now: datetime) -> tuple[int, int]:
    """The (month, year) a card made at `now` expires: `validity_months` on."""
    months = now.year * 12 + now.month - 1 + validity_months
    return months % 12 + 1, months // 12


async def _new_pan(
    session: AsyncSession, services: CardServices, product: CardProduct
) -> tuple[str, bytes]:
    capacity = 10 ** (product.pan_length - len(product.bin) - 1)
    issued = await session.scalar(
        select(func.count())
        .select_from(Card)
        .where(Card.network == product.network, Card.bin == product.bin)
    )
    if (issued or 0) >= capacity:
        raise CardcoreError("BIN_EXHAUSTED")
    for _ in range(PAN_ATTEMPTS):
        pan = services.processor.new_pan(product.bin, product.pan_length)
        pan_hash = services.vault.lookup_hash(pan)
        taken = await session.scalar(
            select(Card.id).where(Card.network == product.network, Card.pan_hash == pan_hash)
        )
        if taken is None:
            return pan, pan_hash
    raise CardcoreError("BIN_EXHAUSTED", "No free card number found; the BIN range is nearly full.")


async def _gift_balance(
    session: AsyncSession, product: CardProduct, user: User, amount: int
) -> Balance:
    if product.max_load is not None and amount > product.max_load:
        raise CardcoreError(
            "GIFT_LOAD_EXCEEDS_MAX", f"At most {product.max_load} for this product."
        )
    balance = Balance(
        id=new_id("bal"),
        program_id=product.program_id,
        owner_type="gift",
        owner_id=user.id,
        currency=product.currency,
    )
    account = await ledger.open_account(
        session,
        program_id=product.program_id,
        currency=product.currency,
        kind="gift_balance",
        owner_id=balance.id,
        no_overdraft=True,
    )
    balance.ledger_account_id = account.id
    session.add(balance)
    await session.flush()
    await balances.load_from_partner(session, balance, amount=amount, code="gift_load")
    return balance


async def issue_card(
    session: AsyncSession, services: CardServices, *, program_id: str, request: IssueRequest
) -> Card:
    product = await ProductRepository(session, program_id).get_or_404(request.product_id)
    user = await UserRepository(session, program_id).get_or_404(request.user_id)
    if request.type == "GIFT":
        if product.kind != "GIFT":
            raise CardcoreError("FORM_FACTOR_NOT_ALLOWED", "GIFT cards need a GIFT product.")
    elif request.type not in product.form_factors or product.kind == "GIFT":
        raise CardcoreError("FORM_FACTOR_NOT_ALLOWED")
    if user.status != CustomerStatus.ACTIVE:
        raise CardcoreError("USER_CLOSED")
    if user.kyc_status != VerificationStatus.APPROVED and (
        product.kind != "GIFT" or product.kyc_required
    ):
        raise CardcoreError("KYC_NOT_APPROVED")
    corporation = None
    if request.corporation_id is not None:
        corporation = await CorporationRepository(session, program_id).get_or_404(
            request.corporation_id
        )
        if corporation.kyb_status != VerificationStatus.APPROVED:
            raise CardcoreError("KYC_NOT_APPROVED", "The corporation's KYB must be APPROVED.")
        employed = await session.get(CorporationEmployee, (corporation.id, user.id))
        if employed is None:
            raise validation_error(
                "user_id", "NOT_AN_EMPLOYEE", "The user is not the corporation's employee."
            )

    if request.type == "GIFT":
        if not request.gift_amount:
            raise validation_error("gift_amount", "REQUIRED", "A gift card is loaded at issue.")
        balance = await _gift_balance(session, product, user, request.gift_amount)
    else:
        balance = await BalanceRepository(session, program_id).get_or_404(request.balance_id)
        balances.require_active(balance)
        owner = corporation.id if corporation is not None else user.id
        if balance.owner_id != owner or balance.owner_type == "gift":
            raise validation_error(
                "balance_id", "NOT_THE_OWNERS", "The balance belongs to someone else."
            )
        if balance.currency != product.currency:
            raise CardcoreError(
                "CURRENCY_MISMATCH", f"The product issues {product.currency} cards."
            )

    name = None
    if request.type == "PHYSICAL" or request.embossing_name:
        options = (
            embossing_names(user.first_name or "", user.middle_name, user.last_name or "")
            if user.last_name
            else []
        )
        name = request.embossing_name or (options[0] if options else None)
        if name is None or name not in options:
            raise CardcoreError("EMBOSSING_NAME_NOT_ALLOWED")
    address = None
    if request.type == "PHYSICAL":
        if not request.delivery_address:
            raise validation_error(
                "delivery_address", "REQUIRED", "A physical card needs an address."
            )
        address = dict(request.delivery_address)
        address["country"] = reference.country_code(
            address.get("country", ""), "delivery_address.country"
        )
    pin = check_pin(request.pin) if request.pin is not None else None
    if (pin is not None or request.pin_hash is not None) and request.type != "PHYSICAL":
        raise validation_error(
            "pin", "NOT_FOR_THIS_CARD", "A PIN is set at issue only for physical cards."
        )

    card_id = new_id("card")
    pan, pan_hash = await _new_pan(session, services, product)
    card = await _new_card(
        session,
        services,
        product,
        card_id=card_id,
        pan=pan,
        pan_hash=pan_hash,
        type=request.type,
        balance_id=balance.id,
        user_id=user.id,
        corporation_id=corporation.id if corporation else None,
        embossing_name=name,
        delivery_address=address,
        pin_hash=pin_hash(services.keyring, card_id, pin)
        if pin
        else (bytes.fromhex(request.pin_hash) if request.pin_hash else None),
        pin_scope=request.pin_scope if request.pin_hash else card_id,
        controls=dict(product.default_controls or {}),
        gift_recipient_name=request.gift_recipient_name,
        gift_message=request.gift_message,
    )
    session.add(card)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        # Another issuance took the same number between our check and our insert.
        raise CardcoreError("BIN_EXHAUSTED", "A card number collided; retry the request.") from exc
    if request.type == "PHYSICAL":
        assert name is not None
        assert address is not None
        await services.processor.order_plastic(card.id, name, address)
    await fees.on_card_issued(session, card)
    _record_created(session, card)
    return card


async def issue_successor(
    session: AsyncSession,
    services: CardServices,
    old: Card,
    *,
    type: str,
    same_number: bool,
    embossing_name: str | None,
    delivery_address: dict[str, Any] | None,
) -> Card:
    """A new card in `old`'s place (a replacement, or a virtual card made physical): on the same
    balance for the same holder, with the old card's controls, PIN and 3DS enrollment; the old
    card is marked `replaced_by` first, so a card with the same number can exist."""
    if old.replaced_by is not None:
        raise CardcoreError("CARD_REPLACED")
    if same_number and await lifecycle.compromised(session, old):
        raise CardcoreError("CARD_NUMBER_COMPROMISED")
    product = await session.get(CardProduct, old.product_id)
    assert product is not None
    pan = await services.vault.decrypt(session, old) if same_number else None
    card_id = new_id("card")
    old.replaced_by = card_id
    await session.flush()
    if pan is None:
        pan, pan_hash = await _new_pan(session, services, product)
    else:
        pan_hash = old.pan_hash
    card = await _new_card(
        session,
        services,
        product,
        card_id=card_id,
        pan=pan,
        pan_hash=pan_hash,
        type=type,
        balance_id=old.balance_id,
        user_id=old.user_id,
        corporation_id=old.corporation_id,
        embossing_name=embossing_name,
        delivery_address=delivery_address,
        pin_hash=old.pin_hash,
        pin_scope=old.pin_scope or old.id,
        controls=dict(old.controls or {}),
        three_ds=old.three_ds,
        replacement_for=old.id,
    )
    session.add(card)
    await session.flush()
    if type == "PHYSICAL" and embossing_name and delivery_address:
        await services.processor.order_plastic(card.id, embossing_name, delivery_address)
    _record_created(session, card)
    return card


async def _new_card(
    session: AsyncSession,
    services: CardServices,
    product: CardProduct,
    *,
    card_id: str,
    pan: str,
    pan_hash: bytes,
    type: str,
    balance_id: str,
    user_id: str | None,
    corporation_id: str | None,
    embossing_name: str | None,
    delivery_address: dict[str, Any] | None,
    pin_hash: bytes | None,
    pin_scope: str | None,
    controls: dict[str, Any],
    gift_recipient_name: str | None = None,
    gift_message: str | None = None,
    three_ds: dict[str, Any] | None = None,
    replacement_for: str | None = None,
) -> Card:
    """The one place a card is made (issued, or in another card's place): its number sealed in
    the vault, its expiry from the product's validity; a physical card INACTIVE with its plastic
    ORDERED until it is activated, any other ACTIVE from now."""
    version, ciphertext = await services.vault.encrypt(session, card_id, pan)
    now = datetime.now(UTC)
    expiry_month, expiry_year = expiry_after(product.validity_months, now)
    physical = type == "PHYSICAL"
    return Card(
        id=card_id,
        program_id=product.program_id,
        product_id=product.id,
        balance_id=balance_id,
        user_id=user_id,
        corporation_id=corporation_id,
        type=type,
        status=CardStatus.INACTIVE if physical else CardStatus.ACTIVE,
        network=product.network,
        bin=product.bin,
        last4=pan[-4:],
        pan_length=len(pan),
        pan_ciphertext=ciphertext,
        pan_key_version=version,
        pan_hash=pan_hash,
        expiry_month=expiry_month,
        expiry_year=expiry_year,
        embossing_name=embossing_name,
        fulfillment_status=FulfillmentStatus.ORDERED if physical else None,
        delivery_address=delivery_address,
        pin_hash=pin_hash,
        pin_scope=pin_scope,
        controls=controls,
        gift_recipient_name=gift_recipient_name,
        gift_message=gift_message,
        three_ds=three_ds,
        replacement_for=replacement_for,
        activated_at=None if physical else now,
    )


def _record_created(session: AsyncSession, card: Card) -> None:
    record_event(
        session,
        program_id=card.program_id,
        object_id=card.id,
        data=CardCreated(
            id=card.id,
            type=card.type,
            status=card.status,
            masked_pan=masked_pan(card),
            balance_id=card.balance_id,
            user_id=card.user_id or "",
        ),
    )


def masked_pan(card: Card) -> str:
    return card.bin + "*" * (card.pan_length - len(card.bin) - 4) + card.last4


# -- lifecycle bits this issue owns ---------------------------------------------------------------


async def move_fulfillment(
    session: AsyncSession,
    card: Card,
    step: str,
    to: FulfillmentStatus,
    *,
    carrier: str | None = None,
    tracking: str | None = None,
) -> Card:
    if card.type != "PHYSICAL":
        raise CardcoreError("INVALID_CARD_TYPE", "Only physical cards travel.")
    current = card.fulfillment_status
    if current is None or to not in FULFILLMENT[step].get(current, frozenset()):
        raise CardcoreError(
            "INVALID_FULFILLMENT_TRANSITION", f"Cannot go from {current or ''} to {to}."
        )
    card.fulfillment_status = to
    if carrier is not None:
        card.carrier = carrier
    if tracking is not None:
        card.tracking_number = tracking
    await session.flush()
    record_event(
        session,
        program_id=card.program_id,
        object_id=card.id,
        data=CardFulfillmentChanged(
            id=card.id,
            from_status=current,
            to_status=to,
            carrier=card.carrier,
            tracking_number=card.tracking_number,
        ),
    )
    return card


async def activate(session: AsyncSession, card: Card, *, actor: str) -> Card:
    if (
        card.type != "PHYSICAL"
        or card.status != CardStatus.INACTIVE
        or card.fulfillment_status not in ACTIVATABLE
    ):
        raise CardcoreError("CARD_NOT_ACTIVATABLE")
    return await lifecycle.transition(
        session, card, CardStatus.ACTIVE, actor=actor, reason="activated"
    )


async def find_by_pan(
    session: AsyncSession, services: CardServices, program_id: str, pan: str
) -> Card | None:
    return await CardRepository(session, program_id).by_pan_hash(services.vault.lookup_hash(pan))


def expiry_yymm(card: Card) -> str:
    return f"{card.expiry_year % 100:02d}{card.expiry_month:02d}"


def card_cvv2(services: CardServices, card: Card, pan: str) -> str:
    key_a, key_b = cvk_pair(*services.cvk, card.cvv_key_index)
    return cvv(pan, expiry_yymm(card), CVV2_SERVICE_CODE, key_a, key_b)


async def reset_cvv(session: AsyncSession, card: Card) -> Card:
    if card.type != "VIRTUAL":
        raise CardcoreError("INVALID_CARD_TYPE", "CVV reset is for virtual cards.")
    card.cvv_key_index += 1
    await session.flush()
    return card


async def set_pin(session: AsyncSession, services: CardServices, card: Card, pin: str) -> Card:
    if card.status not in (CardStatus.ACTIVE, CardStatus.INACTIVE):
        raise CardcoreError("CARD_NOT_ACTIVE")
    card.pin_hash = pin_hash(services.keyring, card.pin_scope or card.id, check_pin(pin))
    card.pin_failures = 0
    await session.flush()
    return card


def sealed_pin(services: CardServices, scope: str, pin: str) -> dict[str, str | None]:
    """What an asynchronous issuance keeps of a PIN until the worker issues the card: its keyed
    hash, bound to the request (`scope`) instead of the card, which does not exist yet."""
    return {
        "pin": None,
        "pin_hash": pin_hash(services.keyring, scope, check_pin(pin)).hex(),
        "pin_scope": scope,
    }


def pin_matches(services: CardServices, card: Card, pin: str) -> bool:
    return security.pin_matches(services.keyring, card.pin_scope or card.id, card.pin_hash, pin)


def require_strong_auth(strong_auth_at: datetime | None) -> None:
    if strong_auth_at is None or datetime.now(UTC) - strong_auth_at > STRONG_AUTH_WINDOW:
        raise CardcoreError("STRONG_AUTH_REQUIRED")


def _comparable(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


async def verify_holder(
    session: AsyncSession, card: Card, *, first_name: str, last_name: str, phone: str
) -> dict[str, bool]:
    """Does this person match the card's holder? Per field; throttled per card."""
    now = datetime.now(UTC)
    if card.holder_checks_window_start is None or now - card.holder_checks_window_start > timedelta(
        hours=1
    ):
        card.holder_checks_window_start = now
        card.holder_checks = 0
    if card.holder_checks >= HOLDER_CHECKS_PER_HOUR:
        raise CardcoreError("RATE_LIMITED", "Too many holder checks for this card; wait an hour.")
    card.holder_checks += 1
    await session.flush()
    user = await session.get(User, card.user_id) if card.user_id else None
    try:
        normalized_phone = reference.normalize_phone(phone)
    except CardcoreError:
        normalized_phone = None
    result = {
        "first_name": bool(
            user and user.first_name and _comparable(user.first_name) == _comparable(first_name)
        ),
        "last_name": bool(
            user and user.last_name and _comparable(user.last_name) == _comparable(last_name)
        ),
        "phone": bool(user and user.phone and normalized_phone == user.phone),
    }
    result["match"] = all(result.values())
    return result
