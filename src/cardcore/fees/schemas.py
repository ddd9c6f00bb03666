"""Fee schedules as partners and ops write and read them, and fee lines as they come out."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cardcore.kit.inputs import Timestamp
from cardcore.kit.money import CurrencyCode, MinorUnits

FeeType = Literal[
    "BALANCE_CREATION",
    "CARD_ISSUANCE",
    "CARD_REPLACEMENT",
    "CARD_PERIODIC",
    "TRANSACTION",
    "TRANSFER",
    "FX",
]
# Fees priced on an amount (a percentage makes sense); the others are fixed.
PERCENTAGE_TYPES = frozenset({"TRANSACTION", "TRANSFER", "FX"})
# Fees of the balance, not of a card: only the program's schedule prices them.
PROGRAM_ONLY_TYPES = frozenset({"BALANCE_CREATION", "TRANSFER"})
Period = Literal["DAILY", "WEEKLY", "MONTHLY"]
FormFactor = Literal["VIRTUAL", "PHYSICAL", "GIFT"]
Channel = Literal["POS", "ECOM", "ATM", "MOTO"]
ShortfallPolicy = Literal["SKIP", "RETRY", "ALLOW_NEGATIVE"]


class Price(BaseModel):
    """fixed + round_half_up(basis × percent_bps / 10,000), then raised to `minimum` and capped at
    `maximum`. Everything is in the currency's minor units, so rounding the percentage to a whole
    minor unit is rounding to the currency's minor unit (a cent for EUR, a yen for JPY)."""

    model_config = ConfigDict(extra="forbid")

    fixed: MinorUnits = 0
    percent_bps: int = Field(
        default=0, ge=0, le=10_000, description="Basis points of the amount: 150 is 1.5 %."
    )
    minimum: MinorUnits | None = None
    maximum: MinorUnits | None = None

    @model_validator(mode="after")
    def _bounds(self) -> "Price":
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is above maximum")
        return self

    def fee_for(self, basis: int) -> int:
        # Integer arithmetic on non-negative minor units: + 5,000 before // 10,000 is half up.
        fee = self.fixed + (basis * self.percent_bps + 5_000) // 10_000
        if self.minimum is not None:
            fee = max(fee, self.minimum)
        if self.maximum is not None:
            fee = min(fee, self.maximum)
        return fee


class SpendAtLeast(BaseModel):
    """Waive a periodic fee when the card's balance spent at least `amount` (settled card
    purchases less card refunds, in the fee's currency) in the period."""

    model_config = ConfigDict(extra="forbid")
    rule: Literal["SPEND_AT_LEAST"]
    amount: MinorUnits


class TransactionsAtLeast(BaseModel):
    """Waive a periodic fee when the card's balance settled at least `count` card purchases in
    the period."""

    model_config = ConfigDict(extra="forbid")
    rule: Literal["TRANSACTIONS_AT_LEAST"]
    count: int = Field(ge=1, le=1_000_000)


class FirstCardsFree(BaseModel):
    """Waive the issuance fee of a user's first `count` cards (replacements do not count)."""

    model_config = ConfigDict(extra="forbid")
    rule: Literal["FIRST_CARDS_FREE"]
    count: int = Field(ge=1, le=1_000)


class FirstMonthFree(BaseModel):
    """Waive a periodic fee for periods that end within a month of the card's creation."""

    model_config = ConfigDict(extra="forbid")
    rule: Literal["FIRST_MONTH_FREE"]


Waiver = Annotated[
    SpendAtLeast | TransactionsAtLeast | FirstCardsFree | FirstMonthFree,
    Field(discriminator="rule"),
]
WAIVERS_FOR = {
    "SPEND_AT_LEAST": {"CARD_PERIODIC"},
    "TRANSACTIONS_AT_LEAST": {"CARD_PERIODIC"},
    "FIRST_MONTH_FREE": {"CARD_PERIODIC"},
    "FIRST_CARDS_FREE": {"CARD_ISSUANCE"},
}


class FeeRule(BaseModel):
    """One fee of a schedule. `form_factor` narrows CARD_ISSUANCE and CARD_REPLACEMENT (left out:
    every card); `period` is required for CARD_PERIODIC, `channel` for TRANSACTION."""

    model_config = ConfigDict(extra="forbid")

    type: FeeType
    form_factor: FormFactor | None = None
    period: Period | None = None
    channel: Channel | None = None
    prices: dict[CurrencyCode, Price] = Field(
        min_length=1, description="The price in each currency a balance may hold."
    )
    waivers: list[Waiver] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _consistent(self) -> "FeeRule":
        card_types = ("CARD_ISSUANCE", "CARD_REPLACEMENT")
        if self.form_factor is not None and self.type not in card_types:
            raise ValueError(f"form_factor is only for {' and '.join(card_types)}")
        if (self.period is not None) != (self.type == "CARD_PERIODIC"):
            raise ValueError("period is required for CARD_PERIODIC and only for it")
        if (self.channel is not None) != (self.type == "TRANSACTION"):
            raise ValueError("channel is required for TRANSACTION and only for it")
        if self.type not in PERCENTAGE_TYPES and any(
            p.percent_bps or p.minimum is not None or p.maximum is not None
            for p in self.prices.values()
        ):
            raise ValueError(f"a {self.type} fee is a fixed amount (no percent, minimum, maximum)")
        for waiver in self.waivers:
            if self.type not in WAIVERS_FOR[waiver.rule]:
                raise ValueError(f"{waiver.rule} does not apply to {self.type} fees")
        return self

    @property
    def identity(self) -> tuple[str, str | None, str | None, str | None]:
        """What a product's rule overrides in the program's schedule."""
        return (self.type, self.form_factor, self.period, self.channel)


class FeeScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str | None = Field(
        default=None,
        description="A product whose rules override the program's (same type, form factor,"
        " period, channel); left out: the program's schedule.",
    )
    effective_from: Timestamp | None = Field(
        default=None,
        description="When this version starts to apply (not in the past); left out: now. Until"
        " then the previous version applies; fees already charged never change.",
    )
    fees: list[FeeRule] = Field(
        max_length=100, description="The whole schedule: an empty list charges nothing."
    )

    @model_validator(mode="after")
    def _unique_rules(self) -> "FeeScheduleCreate":
        seen = set()
        for rule in self.fees:
            if rule.identity in seen:
                raise ValueError(f"two rules for {rule.identity}")
            seen.add(rule.identity)
            if self.product_id is not None and rule.type in PROGRAM_ONLY_TYPES:
                raise ValueError(f"{rule.type} fees belong to the program's schedule")
        return self


class FeeScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    product_id: str | None
    version: int
    effective_from: datetime
    fees: list[FeeRule]
    created_at: datetime


class FeeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    status: str = Field(
        description="HELD (with its authorization or transfer), CHARGED, WAIVED, RELEASED (its"
        " transaction was reversed or failed), DUE (waiting for funds, retried daily) or SKIPPED."
    )
    amount: int = Field(description="As priced: held, charged, or what a waiver spared.")
    currency: str
    basis_amount: int | None = Field(description="What a percentage was taken of.")
    refunded_amount: int
    balance_id: str
    card_id: str | None
    transaction_id: str | None
    money_transfer_id: str | None
    schedule_id: str
    period: str | None
    period_start: datetime | None
    period_end: datetime | None
    waiver: dict[str, object] | None = Field(description="The rule that waived it, and why.")
    reason: str | None = Field(description="Why it was not charged (yet).")
    ledger_transfer_id: str | None
    charged_at: datetime | None
    created_at: datetime


class FeeRefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MinorUnits | None = Field(
        default=None, description="Left out: everything not yet refunded."
    )
    reason: str | None = Field(default=None, max_length=500)


class FeeRefundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    fee_id: str
    amount: int
    currency: str
    reason: str | None
    refunded_by: str
    ledger_transfer_id: str
    created_at: datetime


class FeeRevenueRow(BaseModel):
    currency: str
    type: str
    charged: int = Field(description="Fees posted to the fee revenue account in the window.")
    refunded: int = Field(description="Fee refunds paid back in the window.")
    net: int
    count: int = Field(description="How many fee charges.")
