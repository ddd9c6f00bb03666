from datetime import datetime
from typing import Annotated, Any, Literal, Self

from fastapi import Body, Path
from pydantic import BaseModel, ConfigDict, Field

from cardcore.cards.controls import Controls
from cardcore.cards.lifecycle import failure_action_code
from cardcore.cards.service import masked_pan
from cardcore.kit.money import CurrencyCode, MinorUnits
from cardcore.models import Card, CardStatus

CardId = Annotated[str, Path(description="A card id (`card_…`).")]


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    network: Literal["VISA", "MASTERCARD"]
    bin: str = Field(min_length=6, max_length=8, examples=["45717360"])
    pan_length: int = Field(default=16, ge=13, le=19)
    form_factors: list[Literal["VIRTUAL", "PHYSICAL"]] = Field(min_length=1)
    kind: Literal["DEBIT", "PREPAID", "GIFT"]
    currency: CurrencyCode
    validity_months: int = Field(default=36, ge=1, le=120)
    kyc_required: bool = True
    max_load: MinorUnits | None = Field(default=None, description="Gift products: load cap.")
    # Validated here, with the route's 422, rather than in the service.
    default_controls: Controls = Field(default_factory=Controls)


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    network: str
    bin: str
    pan_length: int
    form_factors: list[str]
    kind: str
    currency: str
    validity_months: int
    kyc_required: bool
    max_load: int | None
    default_controls: dict[str, Any]
    created_at: datetime


class DeliveryAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=100)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    state: str | None = Field(default=None, max_length=10)
    country: str = Field(min_length=2, max_length=2)


class CardCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["VIRTUAL", "PHYSICAL", "GIFT"]
    product_id: str
    user_id: str
    balance_id: str | None = Field(default=None, description="Not for GIFT: it gets its own.")
    corporation_id: str | None = Field(
        default=None, description="Corporate cards: the corporation the card belongs to."
    )
    embossing_name: str | None = Field(default=None, max_length=26)
    delivery_address: DeliveryAddress | None = None
    pin: str | None = Field(
        default=None,
        description="Physical cards: a PIN set at issue (4–6 digits). Only in a JWE body: a "
        "plain body with a PIN is refused with `400 ENCRYPTION_REQUIRED`.",
    )
    gift_amount: MinorUnits | None = None
    gift_recipient_name: str | None = Field(default=None, max_length=100)
    gift_message: str | None = Field(default=None, max_length=500)


class Fulfillment(BaseModel):
    status: str | None
    carrier: str | None
    tracking_number: str | None
    delivery_address: dict[str, Any] | None


class CardOut(BaseModel):
    id: str = Field(examples=["card_01jd3z8k1m2n3p4q5r6s7t8v9w"])
    type: str
    status: str
    network: str
    masked_pan: str = Field(examples=["411111******1234"])
    bin: str
    last4: str
    expiry_month: int
    expiry_year: int
    product_id: str
    balance_id: str
    user_id: str | None
    corporation_id: str | None
    embossing_name: str | None
    pin_set: bool
    fulfillment: Fulfillment | None
    gift_recipient_name: str | None
    gift_message: str | None
    lock_reason: int | None = Field(
        description="The lock reason code while LOCKED (1 lost, 2 stolen, …)."
    )
    failure_action_code: str | None = Field(description="What a locked card answers at POS/ATM.")
    three_ds: dict[str, Any] | None = Field(description="3-D Secure enrollment, if any.")
    replaced_by: str | None
    replacement_for: str | None
    created_at: datetime
    activated_at: datetime | None

    @classmethod
    def of(cls, card: Card) -> Self:
        return cls(
            id=card.id,
            type=card.type,
            status=card.status,
            network=card.network,
            masked_pan=masked_pan(card),
            bin=card.bin,
            last4=card.last4,
            expiry_month=card.expiry_month,
            expiry_year=card.expiry_year,
            product_id=card.product_id,
            balance_id=card.balance_id,
            user_id=card.user_id,
            corporation_id=card.corporation_id,
            embossing_name=card.embossing_name,
            pin_set=card.pin_hash is not None,
            fulfillment=Fulfillment(
                status=card.fulfillment_status,
                carrier=card.carrier,
                tracking_number=card.tracking_number,
                delivery_address=card.delivery_address,
            )
            if card.type == "PHYSICAL"
            else None,
            gift_recipient_name=card.gift_recipient_name,
            gift_message=card.gift_message,
            lock_reason=card.lock_reason if card.status == CardStatus.LOCKED else None,
            failure_action_code=failure_action_code(card),
            three_ds=card.three_ds,
            replaced_by=card.replaced_by,
            replacement_for=card.replacement_for,
            created_at=card.created_at,
            activated_at=card.activated_at,
        )


class CardRequestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    status: str = Field(description="PENDING, COMPLETED (see card_id) or FAILED (see error).")
    card_id: str | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    completed_at: datetime | None


Revealable = Literal["pan", "cvv", "expiry"]


def _everything_revealable() -> list[Revealable]:
    return ["pan", "cvv", "expiry"]


class RevealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: list[Revealable] = Field(default_factory=_everything_revealable, min_length=1)


class RevealOut(BaseModel):
    pan: str | None = None
    cvv: str | None = None
    expiry: str | None = Field(default=None, description="MM/YY")


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin: str = Field(min_length=1, max_length=12)


class ActivateByPan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pan: str = Field(min_length=12, max_length=19)
    expiry: str = Field(pattern=r"^(0[1-9]|1[0-2])/\d{2}$", examples=["09/29"])


class ManufacturingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: Literal["MANUFACTURED", "MANUFACTURING_FAILED"]


class DeliveryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["SHIPPED", "DELIVERED", "RETURNED"]
    carrier: str | None = Field(default=None, max_length=50)
    tracking_number: str | None = Field(default=None, max_length=100)


class HolderCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=1, max_length=30)


class HolderCheckOut(BaseModel):
    first_name: bool
    last_name: bool
    phone: bool
    match: bool


class ZonePinKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["TDES", "AES"] = Field(
        description="TDES (double or triple length) for ISO 9564 format 0 PIN blocks; AES "
        "(128, 192 or 256 bits) for format 4."
    )
    key: str = Field(
        min_length=32,
        max_length=64,
        pattern=r"^[0-9A-Fa-f]+$",
        description="The clear key in hex: TDES 32 or 48 digits, AES 32, 48 or 64.",
    )
    kcv: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Fa-f]{6}$",
        description="The key check value the processor gave for this key; installing a key "
        "whose check value differs is refused (422 `KCV_MISMATCH`).",
    )
    previous_key_grace_seconds: int = Field(
        default=0,
        ge=0,
        le=604_800,
        description="How long the key this one replaces still verifies PIN blocks (messages "
        "already enciphered under it); 0 retires it at once.",
    )


class ZonePinKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["zpk_01jd3z8k1m2n3p4q5r6s7t8v9w"])
    algorithm: str
    key_bits: int
    kcv: str = Field(description="Key check value: compare it with the processor's.")
    status: str = Field(description="CURRENT, or PREVIOUS while its grace period lasts.")
    usable_until: datetime | None = Field(description="A PREVIOUS key verifies until then.")
    created_at: datetime


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


# Nothing to send is a valid request (declining a report, rejecting a physical card request): the
# body is optional and defaults to empty.
Decline = Annotated[DeclineIn, Body(default_factory=DeclineIn)]
