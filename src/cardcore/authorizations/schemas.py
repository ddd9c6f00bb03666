"""The card network's messages: what they carry and what they are answered (shared by the
network routes, their sandbox twins and the authorization's lean route)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cardcore.authorizations import messages
from cardcore.cards.pin_blocks import BLOCK_HEX_DIGITS
from cardcore.kit.money import CurrencyCode, MinorUnits


class NetworkIds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rrn: str | None = Field(default=None, max_length=12)
    stan: str | None = Field(default=None, max_length=6)
    network_transaction_id: str | None = Field(default=None, max_length=64)
    transmission_time: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def some_id(self) -> "NetworkIds":
        if not (self.network_transaction_id or (self.rrn and self.stan)):
            raise ValueError("give network_transaction_id, or rrn with stan")
        return self

    def key(self, program_id: str, kind: str) -> str:
        """Unique per program and kind of message: one program's ids never find another's."""
        parts = [
            program_id,
            kind,
            self.network_transaction_id or "",
            self.rrn or "",
            self.stan or "",
        ]
        return "|".join(parts)


class Merchant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=40)
    name: str | None = Field(default=None, max_length=100)
    mcc: str = Field(pattern=r"^\d{4}$")
    country: str = Field(min_length=2, max_length=2)
    city: str | None = Field(default=None, max_length=60)


class PostingIn(BaseModel):
    """A card message that moves money without asking: a force-post clearing."""

    model_config = ConfigDict(extra="forbid")

    card_id: str | None = None
    pan: str | None = Field(default=None, min_length=12, max_length=19)
    amount: MinorUnits = Field(gt=0, description="In `currency`, converted to the balance's.")
    currency: CurrencyCode
    merchant: Merchant
    channel: Literal["POS", "ECOM", "ATM", "MOTO"]
    entry_mode: Literal["CHIP", "CONTACTLESS", "MAGSTRIPE", "MANUAL", "ECOM"]
    network: NetworkIds

    @model_validator(mode="after")
    def one_card(self) -> "PostingIn":
        if (self.card_id is None) == (self.pan is None):
            raise ValueError("give exactly one of card_id and pan")
        return self

    def to_request(self, program_id: str, kind: str) -> messages.AuthorizationRequest:
        return messages.AuthorizationRequest(
            amount=self.amount,
            currency=self.currency,
            channel=self.channel,
            entry_mode=self.entry_mode,
            merchant=self.merchant.model_dump(),
            network_key=self.network.key(program_id, kind),
            card_id=self.card_id,
            pan=self.pan,
        )


class AuthorizationIn(PostingIn):
    expiry: str | None = Field(default=None, pattern=r"^\d{4}$", description="YYMM")
    cvv2: str | None = Field(default=None, pattern=r"^\d{3,4}$")
    pin_block: str | None = Field(
        default=None,
        pattern=r"^(?:[0-9A-Fa-f]{16}|[0-9A-Fa-f]{32})$",
        description="The PIN the cardholder entered, as an ISO 9564 PIN block enciphered under "
        "the program's zone PIN key: 16 hex digits in format 0 (TDES), 32 in format 4 (AES). "
        "A clear PIN is never taken.",
        examples=["C967C8198151A458"],
    )
    pin_block_format: Literal[0, 4] | None = Field(
        default=None, description="ISO 9564 format of `pin_block`: 0 or 4."
    )

    def to_authorization(self, program_id: str) -> messages.AuthorizationRequest:
        authorization = self.to_request(program_id, "authorization")
        authorization.expiry, authorization.cvv2 = self.expiry, self.cvv2
        if self.pin_block is not None:
            authorization.pin_block = bytes.fromhex(self.pin_block)
            authorization.pin_block_format = self.pin_block_format
        return authorization

    @model_validator(mode="after")
    def whole_pin_block(self) -> "AuthorizationIn":
        if (self.pin_block is None) != (self.pin_block_format is None):
            raise ValueError("give pin_block and pin_block_format together")
        if (
            self.pin_block is not None
            and len(self.pin_block) != BLOCK_HEX_DIGITS[self.pin_block_format or 0]
        ):
            raise ValueError("a format 0 PIN block is 16 hex digits, a format 4 one 32")
        return self


class FollowUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    authorization_id: str
    amount: MinorUnits | None = Field(default=None, gt=0)
    network: NetworkIds


class AmountFollowUpIn(FollowUpIn):
    amount: MinorUnits = Field(gt=0, description="In the balance's currency.")


class AuthorizationOut(BaseModel):
    authorization_id: str
    approved: bool
    response_code: str = Field(description="ISO 8583: 00 approved, 51 funds, 57 channel, …")
    authorization_code: str | None
    decline_reason: str | None
    held_amount: int
    currency: str
    available_balance: int | None
