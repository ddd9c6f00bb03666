import pytest

from cardcore.cards.security import check_pin, cvk_pair, cvv, generate_pan, luhn_valid
from cardcore.kit.errors import CardcoreError

KEY_A, KEY_B = bytes.fromhex("0123456789ABCDEF"), bytes.fromhex("FEDCBA9876543210")


@pytest.mark.parametrize(
    ("pan", "expiry", "service_code", "expected"),
    [
        # Published vectors of the scheme CVV method (CVK A 0123456789ABCDEF, B FEDCBA9876543210).
        ("4123456789012345", "8701", "101", "561"),
        ("4999988887777000", "9105", "111", "245"),
    ],
)
def test_cvv_reproduces_published_vectors(
    pan: str, expiry: str, service_code: str, expected: str
) -> None:
    assert cvv(pan, expiry, service_code, KEY_A, KEY_B) == expected


def test_cvv2_uses_service_code_000_and_a_reset_changes_it() -> None:
    pan = "4123456789012345"
    cvv1 = cvv(pan, "8701", "101", KEY_A, KEY_B)
    cvv2 = cvv(pan, "8701", "000", KEY_A, KEY_B)
    assert cvv2 != cvv1
    reset = cvv(pan, "8701", "000", *cvk_pair(KEY_A, KEY_B, 1))
    assert reset != cvv2
    assert cvk_pair(KEY_A, KEY_B, 0) == (KEY_A, KEY_B)


def test_generated_pans_are_luhn_valid_with_the_bin() -> None:
    # Uniqueness is the card service's job (keyed hash + unique index), not the generator's.
    pans = {generate_pan("45717360", 16) for _ in range(500)}
    assert all(p.startswith("45717360") and len(p) == 16 and luhn_valid(p) for p in pans)
    assert all(luhn_valid(generate_pan("541333", n)) for n in range(13, 20))


@pytest.mark.parametrize("pin", ["1111", "1234", "4321", "999999", "123456", "0123", "9876"])
def test_weak_pins_are_refused(pin: str) -> None:
    with pytest.raises(CardcoreError, match="PIN_TOO_WEAK"):
        check_pin(pin)


@pytest.mark.parametrize("pin", ["123", "1234567", "12a4", ""])
def test_malformed_pins_are_refused(pin: str) -> None:
    with pytest.raises(CardcoreError, match="VALIDATION_ERROR"):
        check_pin(pin)


@pytest.mark.parametrize("pin", ["1357", "2580", "739184", "1212"])
def test_ordinary_pins_pass(pin: str) -> None:
    assert check_pin(pin) == pin
