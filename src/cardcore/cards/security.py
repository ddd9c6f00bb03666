"""Card security values: PAN generation, the card-scheme CVV method, PIN checks and hashing.

CVV2 follows the scheme method (Visa CVV / Mastercard CVC): PAN, expiry YYMM and service code
(`000` for CVV2) right-padded with zeros to 128 bits; the left half DES-encrypted under CVK A,
XORed with the right half, the result 3DES-encrypted (EDE) under CVK A|B; decimalised (first the
decimal digits of the hex result in order, then its letters A–F as 0–5) and the first three kept.
It is never stored: it is derived again whenever it is needed.
"""

import hashlib
import hmac
import itertools
import secrets

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from cardcore.kit.crypto import Keyring
from cardcore.kit.errors import CardcoreError, validation_error

CVV2_SERVICE_CODE = "000"


def luhn_check_digit(partial: str) -> str:
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


def generate_pan(bin: str, length: int) -> str:
    """BIN + random digits + the Luhn check digit."""
    body = "".join(secrets.choice("0123456789") for _ in range(length - len(bin) - 1))
    partial = bin + body
    return partial + luhn_check_digit(partial)


def _encrypt(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(TripleDES(key), modes.ECB()).encryptor()  # noqa: S305 - the scheme's method
    return encryptor.update(block) + encryptor.finalize()


def _decimalise(hex_digits: str) -> str:
    digits = [c for c in hex_digits if c.isdigit()]
    letters = [str(int(c, 16) - 10) for c in hex_digits if not c.isdigit()]
    return "".join(digits + letters)


def cvv(pan: str, expiry_yymm: str, service_code: str, cvk_a: bytes, cvk_b: bytes) -> str:
    data = (pan + expiry_yymm + service_code).ljust(32, "0")[:32]
    left, right = bytes.fromhex(data[:16]), bytes.fromhex(data[16:])
    step = _encrypt(cvk_a * 3, left)  # single DES: K1 = K2 = K3
    step = bytes(a ^ b for a, b in zip(step, right, strict=True))
    step = _encrypt(cvk_a + cvk_b + cvk_a, step)
    return _decimalise(step.hex().upper())[:3]


def cvk_pair(base_a: bytes, base_b: bytes, index: int) -> tuple[bytes, bytes]:
    """The CVK pair a card uses. Index 0 is the configured pair; a CVV reset moves a card to the
    next index, whose pair is derived from the configured one, so its CVV2 changes while PAN and
    expiry stay."""
    if index == 0:
        return base_a, base_b
    derived = hmac.new(base_a + base_b, f"cvk:{index}".encode(), hashlib.sha256).digest()
    return derived[:8], derived[8:16]


def pin_hash(keyring: Keyring, scope: str, pin: str) -> bytes:
    """The only form a PIN is kept in: a keyed hash bound to `scope` (the card, or the first card
    of its replacement chain), so the same PIN on two cards hashes differently."""
    return keyring.lookup_hash(f"{scope}:{pin}", "pin")


def pin_matches(keyring: Keyring, scope: str, expected_hash: bytes | None, pin: str) -> bool:
    """Is `pin` the PIN kept as `expected_hash`? A card with no PIN set matches nothing."""
    return expected_hash is not None and hmac.compare_digest(
        expected_hash, pin_hash(keyring, scope, pin)
    )


def check_pin(pin: str) -> str:
    if not pin.isdigit() or not 4 <= len(pin) <= 6:
        raise validation_error("pin", "INVALID_PIN", "A PIN is 4 to 6 digits.")
    steps = {int(b) - int(a) for a, b in itertools.pairwise(pin)}
    if len(set(pin)) == 1 or steps in ({1}, {-1}):
        raise CardcoreError("PIN_TOO_WEAK")
    return pin
