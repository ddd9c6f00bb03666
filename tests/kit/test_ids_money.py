import time
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from ulid import ULID

from cardcore.kit.money import Money, currency_exponent
from cardcore.models import ids


def test_ids_are_prefixed_and_round_trip() -> None:
    public = ids.new_id("card")
    assert public.startswith("card_")
    assert len(public) == 5 + 26
    as_uuid = ids.to_uuid("card", public)
    assert isinstance(as_uuid, uuid.UUID)
    assert ids.from_uuid("card", as_uuid) == public


def test_ids_sort_by_creation_time() -> None:
    made = [ids.new_id("evt") for _ in range(50)]
    # Same-millisecond ids may tie on time; across milliseconds order holds.
    assert [m[4:14] for m in made] == sorted(m[4:14] for m in made)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "usr",
        "usr_",
        "prg_01m80k0t4srfsqm4vtjebjnzfq",
        "usr_01M80K0T4SRFSQM4VTJEBJNZFQ",
        "usr_01m80k0t4srfsqm4vtjebjnzf",
        "usr_81m80k0t4srfsqm4vtjebjnzfq",
        "usr_01m80k0t4srfsqm4vtjebjnzfu",
    ],
)
def test_malformed_ids_are_rejected(bad: str) -> None:
    assert ids.to_uuid("usr", bad) is None


@given(st.uuids())
def test_any_uuid_has_a_public_form(value: uuid.UUID) -> None:
    assert ids.to_uuid("x", ids.from_uuid("x", value)) == value


def test_currency_exponents_come_from_iso_4217() -> None:
    assert (currency_exponent("EUR"), currency_exponent("JPY"), currency_exponent("KWD")) == (
        2,
        0,
        3,
    )
    assert currency_exponent("XAU") is None  # gold has no minor unit
    assert currency_exponent("ABC") is None
    assert currency_exponent("eur") is None


def test_money_is_integer_minor_units() -> None:
    assert Money(amount=1250, currency="EUR").format() == "12.50 EUR"
    assert Money(amount=1250, currency="JPY").format() == "1250 JPY"
    assert Money(amount=1, currency="KWD").format() == "0.001 KWD"
    for bad in (
        {"amount": 12.5, "currency": "EUR"},
        {"amount": "1250", "currency": "EUR"},
        {"amount": -1, "currency": "EUR"},
        {"amount": 1, "currency": "EURO"},
        {"amount": 2**63, "currency": "EUR"},
    ):
        with pytest.raises(ValidationError):
            Money.model_validate(bad)


@given(st.uuids())
def test_ids_are_the_ulid_standard_in_lower_case(value: uuid.UUID) -> None:
    """The id codec is the ULID's own Crockford base32, so ids stay readable by any ULID library
    (and every id already stored keeps its public form)."""
    body = str(ULID.from_bytes(value.bytes)).lower()
    assert ids.from_uuid("x", value) == f"x_{body}"
    assert ids.to_uuid("x", f"x_{body}") == ULID.from_str(body.upper()).to_uuid() == value


def test_new_ids_carry_the_time_they_were_made() -> None:
    before = int(time.time() * 1000)
    made = ids.new_id("evt")
    after = int(time.time() * 1000)
    assert before <= ULID.from_str(made[4:].upper()).milliseconds <= after
