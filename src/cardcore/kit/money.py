"""Money: integer minor units plus an ISO 4217 code. No floats anywhere near money."""

from functools import lru_cache
from typing import Annotated

import pycountry
from iso4217 import Currency as Iso4217Currency
from pydantic import AfterValidator, BaseModel, ConfigDict, Field


@lru_cache(maxsize=512)
def currency_exponent(code: str) -> int | None:
    """Digits after the decimal point for `code` (EUR 2, JPY 0, KWD 3); None if not a currency
    that can hold money (unknown, or a unit without minor units such as XAU)."""
    if len(code) != 3 or not code.isalpha() or not code.isupper():
        return None
    if pycountry.currencies.get(alpha_3=code) is None:
        return None
    try:
        exponent = Iso4217Currency(code).exponent
    except ValueError:
        return None
    return exponent if isinstance(exponent, int) else None


def _check_currency(code: str) -> str:
    if currency_exponent(code) is None:
        # Never the code itself in the message: whatever was sent may be a card number.
        raise ValueError("not an ISO 4217 currency code with minor units")
    return code


CurrencyCode = Annotated[
    str,
    Field(min_length=3, max_length=3, description="ISO 4217 alphabetic code.", examples=["EUR"]),
    AfterValidator(_check_currency),
]

# The largest amount any request may carry, in minor units: twelve digits, as in ISO 8583's
# amount field (what a card network can send us anyway). It is far below BIGINT's 2**63 - 1 on
# purpose: the ledger keeps running totals (an account's posted credits only ever grow), and
# pricing adds fees to amounts and multiplies them by percentages, so the sums must have room.
# At this bound an account takes over nine million maximal credits before its totals could
# overflow; the error handler turns an overflow that still happens into 422 VALUE_OUT_OF_RANGE.
MAX_AMOUNT = 999_999_999_999

MinorUnits = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_AMOUNT,
        strict=True,
        description="Amount in the currency's minor units (cents for EUR): 1250 is 12.50 EUR. "
        "At most 999,999,999,999.",
        examples=[1250],
    ),
]


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: MinorUnits
    currency: CurrencyCode

    def format(self) -> str:
        """Human-readable, for logs and messages only (never parsed back)."""
        exponent = currency_exponent(self.currency) or 0
        if exponent == 0:
            return f"{self.amount} {self.currency}"
        whole, fraction = divmod(self.amount, 10**exponent)
        return f"{whole}.{fraction:0{exponent}d} {self.currency}"
