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
        raise ValueError(f"{code!r} is not an ISO 4217 currency code with minor units")
    return code


CurrencyCode = Annotated[
    str,
    Field(min_length=3, max_length=3, description="ISO 4217 alphabetic code.", examples=["EUR"]),
    AfterValidator(_check_currency),
]

# 2**63 - 1: the largest amount a PostgreSQL BIGINT holds.
MAX_AMOUNT = 9_223_372_036_854_775_807

MinorUnits = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_AMOUNT,
        strict=True,
        description="Amount in the currency's minor units (cents for EUR): 1250 is 12.50 EUR.",
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
