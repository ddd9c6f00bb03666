from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cardcore.kit.money import CurrencyCode, MinorUnits


class BalanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = None
    corporation_id: str | None = None
    currency: CurrencyCode

    @model_validator(mode="after")
    def one_owner(self) -> "BalanceCreate":
        if (self.user_id is None) == (self.corporation_id is None):
            raise ValueError("give exactly one of user_id and corporation_id")
        return self


class BalanceOut(BaseModel):
    id: str = Field(examples=["bal_01jd3z8k1m2n3p4q5r6s7t8v9w"])
    owner_type: str
    owner_id: str
    currency: str
    status: str = Field(description="ACTIVE, BLOCKED or CLOSED.")
    total: int = Field(description="Posted credits − posted debits, in minor units.")
    available: int = Field(description="Total − pending holds: what can be spent now.")
    pending: int = Field(description="Money held by pending debits (card holds, transfers).")
    cards: list[str] = Field(default_factory=list, description="Cards on this balance.")
    created_at: datetime


class Amount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MinorUnits = Field(gt=0)
    currency: CurrencyCode


class ReloadOut(BaseModel):
    balance: BalanceOut
    ledger_transfer_id: str


class LedgerEntry(BaseModel):
    id: str = Field(description="The ledger transfer (`ltr_…`).")
    kind: str = Field(description="single, pending (a hold), post, void or expire.")
    code: str = Field(description="What moved the money: reload, transfer, iban_transfer, …")
    direction: Literal["credit", "debit"]
    amount: int
    currency: str
    running_balance: int = Field(description="The balance's total after this entry.")
    pending_id: str | None
    fee_id: str | None = Field(default=None, description="The fee line a `fee` entry charges.")
    transaction_id: str | None = Field(
        default=None, description="The card transaction a card entry belongs to."
    )
    created_at: datetime


class PartnerBalanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["CREDIT", "DEPOSIT"]
    currency: CurrencyCode
    low_balance_threshold: MinorUnits | None = Field(
        default=None, description="Below this, a partner_balance.low event is sent (once)."
    )


class PartnerReload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MinorUnits = Field(gt=0)
    reference: str | None = Field(default=None, max_length=140)


class PartnerBalanceOut(BaseModel):
    id: str
    type: str
    currency: str
    total: int
    available: int
    low_balance_threshold: int | None
    created_at: datetime


class SummaryRow(BaseModel):
    currency: str
    users: int = Field(description="What all users and corporations hold.")
    wallet: int = Field(description="Users plus the partner balances.")


class IbanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iban: str = Field(max_length=64, examples=["DE89 3704 0044 0532 0130 00"])


class IbanOut(BaseModel):
    valid: bool
    iban: str
    formatted: str
    country: str
    bank_code: str | None
    bic: str | None
    bank_name: str | None


class PaymentContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str
    iban: str = Field(max_length=64)
    holder_name: str = Field(min_length=1, max_length=140)


class PaymentContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    iban: str
    bic: str | None
    holder_name: str
    created_at: datetime


class TransferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_balance_id: str
    amount: MinorUnits = Field(gt=0)
    currency: CurrencyCode
    to_balance_id: str | None = None
    payment_contact_id: str | None = None
    reference: str | None = Field(default=None, max_length=140)

    @model_validator(mode="after")
    def one_destination(self) -> "TransferCreate":
        if (self.to_balance_id is None) == (self.payment_contact_id is None):
            raise ValueError("give exactly one of to_balance_id and payment_contact_id")
        return self


class TransferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str = Field(description="INTERNAL (balance to balance) or EXTERNAL (to an IBAN).")
    status: str = Field(description="PENDING, COMPLETED or FAILED.")
    source_balance_id: str
    destination_balance_id: str | None
    payment_contact_id: str | None
    amount: int
    currency: str
    reference: str | None
    failure_reason: str | None
    created_at: datetime
    completed_at: datetime | None


class SettleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)
