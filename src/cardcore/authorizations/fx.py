"""Foreign exchange: what a card message in one currency costs a balance in another, at the
program's rate (`POST /v1/admin/fx-rates`) plus its markup."""

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.authorizations.repository import FxRateRepository
from cardcore.kit.money import MAX_AMOUNT, currency_exponent
from cardcore.models import Program


async def convert(
    session: AsyncSession, program: Program, amount: int, source: str, target: str
) -> int | None:
    """`convert_at` the program's rate from `source` to `target`, read now."""
    if source == target:
        return amount
    rate = await FxRateRepository(session, program.id).rate(source, target)
    return convert_at(rate, program.fx_markup_bps, amount, source, target)


def convert_at(
    rate: Decimal | None, markup_bps: int, amount: int, source: str, target: str
) -> int | None:
    """`amount` (minor units of `source`) in minor units of `target` at `rate`, with the
    program's markup, rounded half up to the target's minor unit; None when there is no rate,
    or when the result would be above MAX_AMOUNT (an absurd rate): no balance could be charged
    it, and the ledger's columns could not hold it."""
    if source == target:
        return amount
    if rate is None:
        return None
    source_exp, target_exp = currency_exponent(source), currency_exponent(target)
    assert source_exp is not None
    assert target_exp is not None
    major = Decimal(amount) / (Decimal(10) ** source_exp)
    billed = major * Decimal(rate) * (1 + Decimal(markup_bps) / Decimal(10_000))
    scaled = billed * (Decimal(10) ** target_exp)
    # Checked before rounding, which a number of 30 digits would not survive: anything that
    # rounds above MAX_AMOUNT.
    if scaled >= MAX_AMOUNT + Decimal("0.5"):
        return None
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))
