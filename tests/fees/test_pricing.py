"""Pricing a fee (`Price.fee_for`) and the calendar of periodic fees (`last_period`,
`recent_periods`, `month_later`): pure functions, no database.

The pricing rule, as `Price` documents it and these tests hold it to:

    fee = fixed + round_half_up(basis × percent_bps / 10,000)   # in minor units
    fee = max(fee, minimum)                                      # if a minimum is set
    fee = min(fee, maximum)                                      # if a maximum is set

Every amount is in the currency's minor units, so rounding the percentage to a whole minor unit
is rounding to the currency's minor unit: a cent for EUR, a yen for JPY (exponent 0), a fils for
KWD (exponent 3). Half a minor unit rounds up (away from zero: amounts are never negative).
"""

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cardcore.fees.periodic import CATCH_UP, PERIODS, last_period, month_later, recent_periods
from cardcore.fees.schemas import FeeRule, Price
from cardcore.kit.money import MAX_AMOUNT, currency_exponent

WARSAW = ZoneInfo("Europe/Warsaw")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# -- Price.fee_for ---------------------------------------------------------------------------------


def test_a_fixed_fee_ignores_the_amount() -> None:
    price = Price(fixed=250)
    assert [price.fee_for(basis) for basis in (0, 1, 1_033, 10**12)] == [250, 250, 250, 250]
    assert Price().fee_for(5_000) == 0


@pytest.mark.parametrize(
    ("basis", "exact", "fee"),
    [
        (1_033, "15.495", 15),  # below half a cent: down
        (1_100, "16.5", 17),  # exactly half a cent: up
        (1_000, "15", 15),  # exact
        (1_067, "16.005", 16),  # just above a whole cent, below the half: down
        (1_066, "15.99", 16),  # above the half: up
        (33, "0.495", 0),  # a small amount can cost nothing
        (34, "0.51", 1),
        (0, "0", 0),
    ],
)
def test_a_percentage_rounds_half_up_to_the_minor_unit(basis: int, exact: str, fee: int) -> None:
    """1.5 % (150 bps) of `basis` cents is `exact` cents, rounded half up to a whole cent."""
    assert Decimal(basis) * 150 / 10_000 == Decimal(exact)
    assert Price(percent_bps=150).fee_for(basis) == fee


def test_fixed_plus_percentage_rounds_only_the_percentage() -> None:
    # 0.25 + 1.5 % of 11.00 (0.165 → 0.17) = 0.42; the fixed part is already whole.
    assert Price(fixed=25, percent_bps=150).fee_for(1_100) == 42
    assert Price(fixed=25, percent_bps=150).fee_for(1_033) == 40


def test_minimum_then_maximum() -> None:
    price = Price(fixed=10, percent_bps=200, minimum=100, maximum=500)
    assert price.fee_for(0) == 100, "raised to the minimum"
    assert price.fee_for(4_000) == 100, "10 + 80 = 90 is below the minimum"
    assert price.fee_for(4_500) == 100, "10 + 90 = 100 is the minimum exactly"
    assert price.fee_for(10_000) == 210, "between the bounds: as computed"
    assert price.fee_for(24_500) == 500, "10 + 490 = 500 is the maximum exactly"
    assert price.fee_for(1_000_000) == 500, "capped at the maximum"
    # The minimum applies before the maximum: a minimum equal to the maximum is a flat fee.
    assert Price(percent_bps=100, minimum=70, maximum=70).fee_for(10**9) == 70
    assert Price(percent_bps=100, minimum=70, maximum=70).fee_for(0) == 70
    # Only a minimum, only a maximum.
    assert Price(percent_bps=100, minimum=50).fee_for(10**6) == 10_000
    assert Price(percent_bps=100, maximum=50).fee_for(0) == 0


def test_a_minimum_above_the_maximum_is_refused() -> None:
    with pytest.raises(ValidationError, match="minimum is above maximum"):
        Price(percent_bps=100, minimum=501, maximum=500)
    with pytest.raises(ValidationError):
        Price(percent_bps=10_001)  # more than 100 %
    with pytest.raises(ValidationError):
        Price(fixed=-1)


def test_yen_and_dinar_round_to_their_own_minor_unit() -> None:
    """JPY has no minor unit (exponent 0), KWD has three digits (fils, exponent 3): the same
    numbers in minor units price the same, and the result is a whole yen or a whole fils."""
    assert (currency_exponent("JPY"), currency_exponent("EUR"), currency_exponent("KWD")) == (
        0,
        2,
        3,
    )
    rule = FeeRule.model_validate(
        {
            "type": "TRANSACTION",
            "channel": "POS",
            "prices": {
                currency: {"percent_bps": 150, "minimum": 5, "maximum": 10_000}
                for currency in ("JPY", "EUR", "KWD")
            },
        }
    )
    for currency in ("JPY", "EUR", "KWD"):
        price = rule.prices[currency]
        # ¥1,033 → ¥15.495 → ¥15; 1.033 KWD → 15.495 fils → 15 fils (0.015 KWD).
        assert price.fee_for(1_033) == 15, currency
        # ¥1,100 → ¥16.5 → ¥17; 1.100 KWD → 16.5 fils → 17 fils.
        assert price.fee_for(1_100) == 17, currency
        assert price.fee_for(100) == 5, currency  # ¥1.5 → ¥2, raised to the minimum ¥5
        assert price.fee_for(10**7) == 10_000, currency  # capped
    # In major units: 1.5 % of 1.100 KWD is 0.0165 KWD, which is 0.017 KWD to the fils.
    assert Decimal(rule.prices["KWD"].fee_for(1_100)).scaleb(-3) == Decimal("0.017")
    assert (Decimal("1.100") * Decimal("0.015")).quantize(
        Decimal("0.001"), rounding=ROUND_HALF_UP
    ) == Decimal("0.017")


def _expected(basis: int, fixed: int, bps: int, minimum: int | None, maximum: int | None) -> int:
    """The documented rule, computed with decimals rather than integer tricks."""
    percentage = (Decimal(basis) * Decimal(bps) / Decimal(10_000)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    fee = Decimal(fixed) + percentage
    if minimum is not None:
        fee = max(fee, Decimal(minimum))
    if maximum is not None:
        fee = min(fee, Decimal(maximum))
    return int(fee)


@st.composite
def prices(draw: st.DrawFn) -> tuple[int, int, int | None, int | None]:
    fixed = draw(st.integers(0, 10**9))
    bps = draw(st.integers(0, 10_000))
    minimum = draw(st.none() | st.integers(0, 10**10))
    maximum = draw(st.none() | st.integers(minimum or 0, 10**11))
    return fixed, bps, minimum, maximum


@given(
    price=prices(),
    basis=st.integers(0, 10**14) | st.integers(0, MAX_AMOUNT) | st.integers(0, 20_000),
)
def test_fee_for_is_the_decimal_rule(
    price: tuple[int, int, int | None, int | None], basis: int
) -> None:
    fixed, bps, minimum, maximum = price
    fee = Price(fixed=fixed, percent_bps=bps, minimum=minimum, maximum=maximum).fee_for(basis)
    assert isinstance(fee, int)
    assert fee == _expected(basis, fixed, bps, minimum, maximum)


@given(bps=st.integers(0, 10_000), basis=st.integers(0, 10**12))
def test_a_percentage_is_within_half_a_minor_unit(bps: int, basis: int) -> None:
    fee = Price(percent_bps=bps).fee_for(basis)
    exact = Decimal(basis) * bps / 10_000
    assert abs(Decimal(fee) - exact) <= Decimal("0.5")
    assert Decimal(fee) - exact != Decimal("-0.5"), "a half rounds up, never down"


# -- last_period ---------------------------------------------------------------------------------


def test_daily_in_utc() -> None:
    assert last_period("DAILY", utc(2026, 11, 22, 8, 0), "UTC") == (
        "2026-11-21",
        utc(2026, 11, 21),
        utc(2026, 11, 22),
    )
    # At midnight exactly, the day that just ended.
    assert last_period("DAILY", utc(2026, 11, 23), "UTC")[0] == "2026-11-22"
    assert last_period("DAILY", utc(2026, 11, 22, 23, 59, 59), "UTC")[0] == "2026-11-21"


def test_daily_in_warsaw_around_midnight() -> None:
    """23:30 UTC is already tomorrow in Warsaw (CET, UTC+1): the Warsaw day that just ended is
    the one charged, and its bounds are Warsaw midnights."""
    now = utc(2026, 11, 22, 23, 30)
    assert now.astimezone(WARSAW).date() == date(2026, 11, 23)
    assert last_period("DAILY", now, "Europe/Warsaw") == (
        "2026-11-22",
        utc(2026, 11, 21, 23),
        utc(2026, 11, 22, 23),
    )
    assert last_period("DAILY", now, "UTC")[0] == "2026-11-21", "in UTC it is still the 22nd"
    # 22:59 UTC is 23:59 in Warsaw: the 22nd has not ended there yet.
    assert last_period("DAILY", utc(2026, 11, 22, 22, 59), "Europe/Warsaw")[0] == "2026-11-21"


def test_daily_across_a_dst_change() -> None:
    """Warsaw springs forward on 29 March 2026 (a 23-hour day) and falls back on 25 October
    2026 (a 25-hour day): a day is local midnight to local midnight, not 24 hours."""
    label, start, end = last_period("DAILY", utc(2026, 3, 30, 6), "Europe/Warsaw")
    assert (label, start, end) == ("2026-03-29", utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    assert end - start == timedelta(hours=23)
    label, start, end = last_period("DAILY", utc(2026, 10, 26, 6), "Europe/Warsaw")
    assert (label, start, end) == ("2026-10-25", utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    assert end - start == timedelta(hours=25)


def test_weekly_is_the_last_iso_week() -> None:
    # Sunday 22 November 2026 is in week 47: the last whole week is 46 (9–16 November).
    assert last_period("WEEKLY", utc(2026, 11, 22, 8), "UTC") == (
        "2026-W46",
        utc(2026, 11, 9),
        utc(2026, 11, 16),
    )
    # Monday 00:00: the week that just ended.
    assert last_period("WEEKLY", utc(2026, 11, 23), "UTC")[0] == "2026-W47"
    # Sunday 23:30 UTC is Monday 00:30 in Warsaw.
    assert last_period("WEEKLY", utc(2026, 11, 22, 23, 30), "Europe/Warsaw") == (
        "2026-W47",
        utc(2026, 11, 15, 23),
        utc(2026, 11, 22, 23),
    )
    # A week with the spring DST change is 167 hours long.
    _, start, end = last_period("WEEKLY", utc(2026, 3, 30, 12), "Europe/Warsaw")
    assert end - start == timedelta(hours=167)


def test_weekly_across_year_boundaries() -> None:
    """ISO weeks: 2026 has 53 of them (it starts on a Thursday); week 1 of 2026 starts on Monday
    29 December 2025; 2027-W01 starts on 4 January 2027."""
    # Friday 1 January 2027: the last whole week is 21–28 December 2026, week 52.
    assert last_period("WEEKLY", utc(2027, 1, 1, 12), "UTC") == (
        "2026-W52",
        utc(2026, 12, 21),
        utc(2026, 12, 28),
    )
    # Tuesday 5 January 2027: 28 December 2026 – 4 January 2027 is 2026's week 53.
    assert last_period("WEEKLY", utc(2027, 1, 5), "UTC") == (
        "2026-W53",
        utc(2026, 12, 28),
        utc(2027, 1, 4),
    )
    assert last_period("WEEKLY", utc(2027, 1, 12), "UTC")[0] == "2027-W01"
    # Week 1 of a year may start in the year before, and is labelled with its ISO year.
    assert last_period("WEEKLY", utc(2026, 1, 6), "UTC") == (
        "2026-W01",
        utc(2025, 12, 29),
        utc(2026, 1, 5),
    )
    # 2025 has 52 weeks: the week before 2026-W01 is 2025-W52.
    assert last_period("WEEKLY", utc(2025, 12, 30), "UTC")[0] == "2025-W52"


def test_monthly() -> None:
    assert last_period("MONTHLY", utc(2026, 11, 22, 8), "UTC") == (
        "2026-10",
        utc(2026, 10, 1),
        utc(2026, 11, 1),
    )
    # January: the previous December, of the previous year.
    assert last_period("MONTHLY", utc(2027, 1, 1), "UTC") == (
        "2026-12",
        utc(2026, 12, 1),
        utc(2027, 1, 1),
    )
    assert last_period("MONTHLY", utc(2027, 1, 31, 23, 59), "UTC")[0] == "2026-12"
    # March: February, 28 or 29 days.
    _, start, end = last_period("MONTHLY", utc(2028, 3, 1), "UTC")
    assert (start, end, end - start) == (utc(2028, 2, 1), utc(2028, 3, 1), timedelta(days=29))
    _, start, end = last_period("MONTHLY", utc(2027, 3, 15), "UTC")
    assert end - start == timedelta(days=28)


def test_monthly_in_warsaw() -> None:
    """March 2026 in Warsaw starts at CET midnight (23:00 UTC the day before) and ends at CEST
    midnight (22:00 UTC): one hour short of 31 days. 22:30 UTC on 31 March is already April."""
    now = utc(2026, 3, 31, 22, 30)
    assert last_period("MONTHLY", now, "Europe/Warsaw") == (
        "2026-03",
        utc(2026, 2, 28, 23),
        utc(2026, 3, 31, 22),
    )
    assert last_period("MONTHLY", now, "UTC")[0] == "2026-02"
    # New Year in Warsaw comes an hour before it does in UTC.
    assert last_period("MONTHLY", utc(2026, 12, 31, 23, 30), "Europe/Warsaw") == (
        "2026-12",
        utc(2026, 11, 30, 23),
        utc(2026, 12, 31, 23),
    )


ZONES = [
    "UTC",
    "Europe/Warsaw",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # DST changes at midnight
    "Pacific/Kiritimati",  # +14
]


@given(
    now=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda naive: naive.replace(tzinfo=UTC)
    ),
    zone=st.sampled_from(ZONES),
    kind=st.sampled_from(PERIODS),
)
def test_the_last_period_ended_before_now_and_is_the_latest(
    now: datetime, zone: str, kind: str
) -> None:
    label, start, end = last_period(kind, now, zone)
    assert start.tzinfo is not None
    assert end.tzinfo is not None
    assert start < end <= now, "a whole period that has ended"
    tz = ZoneInfo(zone)
    first, following, today = (
        start.astimezone(tz).date(),
        end.astimezone(tz).date(),
        now.astimezone(tz).date(),
    )
    if kind == "DAILY":
        assert label == first.isoformat()
        assert following == today == first + timedelta(days=1)
    elif kind == "WEEKLY":
        year, week, weekday = first.isocalendar()
        assert (label, weekday) == (f"{year}-W{week:02d}", 1)
        assert following == first + timedelta(days=7)
        assert 0 <= (today - following).days < 7, "the week that ended last"
    else:
        assert (label, first.day, following.day) == (f"{first:%Y-%m}", 1, 1)
        assert (following.year, following.month) == (today.year, today.month)


# -- recent_periods ------------------------------------------------------------------------------


def test_the_catch_up_windows() -> None:
    assert CATCH_UP == {"DAILY": 7, "WEEKLY": 4, "MONTHLY": 2}


def test_recent_days_oldest_first() -> None:
    assert recent_periods("DAILY", utc(2030, 2, 1, 0, 5), "UTC") == [
        (f"2030-01-{day}", utc(2030, 1, day), utc(2030, 1, day) + timedelta(days=1))
        for day in range(25, 32)
    ]
    # Across the year, at midnight exactly: the day that just ended is the last.
    assert [label for label, _, _ in recent_periods("DAILY", utc(2030, 1, 3), "UTC")] == [
        "2029-12-27",
        "2029-12-28",
        "2029-12-29",
        "2029-12-30",
        "2029-12-31",
        "2030-01-01",
        "2030-01-02",
    ]


def test_recent_days_in_warsaw_across_a_dst_change() -> None:
    """06:00 UTC on 31 March 2026 in Warsaw: 24 to 30 March, Warsaw midnight to Warsaw
    midnight; the 29th is 23 hours long (spring forward), and the days before it start at 23:00
    UTC, those after at 22:00 UTC."""
    periods = recent_periods("DAILY", utc(2026, 3, 31, 6), "Europe/Warsaw")
    assert periods == [
        ("2026-03-24", utc(2026, 3, 23, 23), utc(2026, 3, 24, 23)),
        ("2026-03-25", utc(2026, 3, 24, 23), utc(2026, 3, 25, 23)),
        ("2026-03-26", utc(2026, 3, 25, 23), utc(2026, 3, 26, 23)),
        ("2026-03-27", utc(2026, 3, 26, 23), utc(2026, 3, 27, 23)),
        ("2026-03-28", utc(2026, 3, 27, 23), utc(2026, 3, 28, 23)),
        ("2026-03-29", utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)),
        ("2026-03-30", utc(2026, 3, 29, 22), utc(2026, 3, 30, 22)),
    ]
    # 23:30 UTC on the 30th is already the 31st in Warsaw (CEST, UTC+2), not yet in UTC.
    assert recent_periods("DAILY", utc(2026, 3, 30, 22, 30), "Europe/Warsaw")[-1][0] == (
        "2026-03-30"
    )
    assert recent_periods("DAILY", utc(2026, 3, 30, 22, 30), "UTC")[-1][0] == "2026-03-29"


def test_recent_weeks_oldest_first_across_the_year() -> None:
    # Tuesday 12 January 2027: 2027-W01 is the last whole week, after 2026's weeks 51 to 53.
    assert recent_periods("WEEKLY", utc(2027, 1, 12, 9), "UTC") == [
        ("2026-W51", utc(2026, 12, 14), utc(2026, 12, 21)),
        ("2026-W52", utc(2026, 12, 21), utc(2026, 12, 28)),
        ("2026-W53", utc(2026, 12, 28), utc(2027, 1, 4)),
        ("2027-W01", utc(2027, 1, 4), utc(2027, 1, 11)),
    ]
    # In Warsaw, Monday 00:30 there (Sunday 23:30 UTC): the week that just ended is the last.
    assert recent_periods("WEEKLY", utc(2027, 1, 10, 23, 30), "Europe/Warsaw") == [
        ("2026-W51", utc(2026, 12, 13, 23), utc(2026, 12, 20, 23)),
        ("2026-W52", utc(2026, 12, 20, 23), utc(2026, 12, 27, 23)),
        ("2026-W53", utc(2026, 12, 27, 23), utc(2027, 1, 3, 23)),
        ("2027-W01", utc(2027, 1, 3, 23), utc(2027, 1, 10, 23)),
    ]


def test_recent_months_oldest_first() -> None:
    assert recent_periods("MONTHLY", utc(2030, 2, 1, 0, 5), "UTC") == [
        ("2029-12", utc(2029, 12, 1), utc(2030, 1, 1)),
        ("2030-01", utc(2030, 1, 1), utc(2030, 2, 1)),
    ]
    # In Warsaw, March 2026 ends at CEST midnight (22:00 UTC), February began at CET midnight.
    assert recent_periods("MONTHLY", utc(2026, 4, 15), "Europe/Warsaw") == [
        ("2026-02", utc(2026, 1, 31, 23), utc(2026, 2, 28, 23)),
        ("2026-03", utc(2026, 2, 28, 23), utc(2026, 3, 31, 22)),
    ]


@given(
    now=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda naive: naive.replace(tzinfo=UTC)
    ),
    zone=st.sampled_from(ZONES),
    kind=st.sampled_from(PERIODS),
)
def test_recent_periods_are_the_last_ones_back_to_back(now: datetime, zone: str, kind: str) -> None:
    """CATCH_UP[kind] whole periods, oldest first, each ending where the next starts, the last
    one being `last_period`'s; each is the last period before its own end."""
    periods = recent_periods(kind, now, zone)
    assert len(periods) == CATCH_UP[kind]
    assert periods[-1] == last_period(kind, now, zone)
    for (_, _, end), (_, start, _) in pairwise(periods):
        assert end == start
    for label, start, end in periods:
        assert start < end <= now
        assert last_period(kind, end, zone) == (label, start, end)
    assert len({label for label, _, _ in periods}) == len(periods)


# -- month_later ---------------------------------------------------------------------------------


def test_month_later() -> None:
    assert month_later(utc(2030, 1, 15, 10, 30)) == utc(2030, 2, 15, 10, 30)
    assert month_later(utc(2030, 1, 31, 10, 30)) == utc(2030, 2, 28, 10, 30)
    assert month_later(utc(2028, 1, 31, 23, 59, 59)) == utc(2028, 2, 29, 23, 59, 59)
    assert month_later(utc(2028, 2, 29)) == utc(2028, 3, 29)
    assert month_later(utc(2030, 3, 31)) == utc(2030, 4, 30)
    assert month_later(utc(2030, 12, 31, 8)) == utc(2031, 1, 31, 8), "across the year"
    assert month_later(utc(2030, 12, 1)) == utc(2031, 1, 1)
    warsaw = datetime(2030, 1, 31, 0, 30, tzinfo=WARSAW)
    assert month_later(warsaw) == datetime(2030, 2, 28, 0, 30, tzinfo=WARSAW), "keeps its zone"
