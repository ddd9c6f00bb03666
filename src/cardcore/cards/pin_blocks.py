"""ISO 9564-1 PIN blocks, as the card network sends them, verified where the PIN never leaves.

The processor sends the PIN the cardholder typed as an enciphered PIN block under the zone PIN key
(ZPK) the program shares with it (`cards/zone_pin_keys.py`). Two formats are taken:

- **Format 0** (TDES, 8 bytes): the PIN field `0 N P…P F…F` (control 0, the PIN length N of 4–12,
  the digits, fill F to 16 nibbles) XOR the PAN field `0000` + the 12 rightmost PAN digits before
  the check digit; enciphered with the ZPK in one TDES block.
- **Format 4** (AES, 16 bytes; ISO 9564-1:2017): the PIN field `4 N P…P A…A` to 16 nibbles, then
  16 random nibbles; the PAN field `M` (the PAN's length minus 12; 0, with the PAN left-padded
  with zeros to 12 digits, when it is shorter) and the PAN, zero-filled to 32 nibbles. The block
  is E(K, E(K, PIN field) XOR PAN field), AES in single-block (ECB) steps.

`verify_pin_block` is the only function that ever holds the digits: it deciphers, checks the
structure, hashes the digits the way the card's PIN was hashed and compares, and returns only a
verdict. Nothing here logs.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cardcore.cards.security import pin_matches
from cardcore.kit.crypto import Keyring

TDES = "TDES"
AES = "AES"
# The enciphered block's length in hex digits, and the key algorithm, for each format we take.
BLOCK_HEX_DIGITS = {0: 16, 4: 32}
FORMAT_ALGORITHM = {0: TDES, 4: AES}
MIN_PIN, MAX_PIN = 4, 12


class PinVerdict(StrEnum):
    MATCH = "MATCH"
    MISMATCH = "MISMATCH"
    # No usable key turns the block into a well-formed PIN field for this card's PAN: the
    # processor used another key, or built the block for another card.
    UNREADABLE = "UNREADABLE"
    # The program has no usable zone PIN key for this format.
    NO_KEY = "NO_KEY"


@dataclass(frozen=True, slots=True)
class ZoneKey:
    algorithm: str
    key: bytes = field(repr=False)


def tdes(key: bytes) -> TripleDES:
    """A double-length key (K1 K2) as the triple-length K1 K2 K1 it stands for: the same cipher,
    in the form `cryptography` keeps supporting."""
    return TripleDES(key if len(key) == 24 else key + key[:8])


def _single_block(cipher: Cipher[Any], block: bytes, *, decrypt: bool) -> bytes:
    context = cipher.decryptor() if decrypt else cipher.encryptor()
    return context.update(block) + context.finalize()


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _digits(pin_field: str, control: str, fill: str) -> str | None:
    """The PIN in a clear PIN field's first 16 nibbles (lower-case hex), or None if the field is
    not well formed: control nibble, a length of 4–12, decimal digits, then only `fill`."""
    if pin_field[0] != control:
        return None
    length = int(pin_field[1], 16)
    if not MIN_PIN <= length <= MAX_PIN:
        return None
    digits = pin_field[2 : 2 + length]
    if not all("0" <= d <= "9" for d in digits) or pin_field[2 + length : 16] != fill * (
        14 - length
    ):
        return None
    return digits


def format0_pan_field(pan: str) -> bytes:
    return bytes.fromhex("0000" + pan[:-1][-12:])


def format4_pan_field(pan: str) -> bytes:
    length_nibble = max(len(pan) - 12, 0)
    return bytes.fromhex(f"{length_nibble}{pan.rjust(12, '0')}".ljust(32, "0"))


def _format0(block: bytes, pan: str, key: bytes) -> str | None:
    # ECB on one block is the standard's construction, not a choice of mode.
    cipher = Cipher(tdes(key), modes.ECB())  # noqa: S305
    clear = _xor(_single_block(cipher, block, decrypt=True), format0_pan_field(pan))
    return _digits(clear.hex(), "0", "f")


def _format4(block: bytes, pan: str, key: bytes) -> str | None:
    cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305 - the standard's construction
    intermediate_b = _single_block(cipher, block, decrypt=True)
    intermediate_a = _xor(intermediate_b, format4_pan_field(pan))
    pin_field = _single_block(cipher, intermediate_a, decrypt=True)
    return _digits(pin_field.hex(), "4", "a")


def verify_pin_block(
    block: bytes,
    block_format: int,
    pan: str,
    keys: Sequence[ZoneKey],
    *,
    keyring: Keyring,
    pin_scope: str,
    expected_hash: bytes | None,
) -> PinVerdict:
    """Does the PIN in `block` (enciphered under one of `keys`, built for `pan`) match the card's
    keyed PIN hash? Keys are tried in the order given (current first); the first that yields a
    well-formed PIN field decides. A card with no PIN set matches nothing."""
    if block_format not in FORMAT_ALGORITHM or len(block) != BLOCK_HEX_DIGITS[block_format] // 2:
        raise ValueError("unsupported PIN block format or length")
    algorithm = FORMAT_ALGORITHM[block_format]
    usable = [k for k in keys if k.algorithm == algorithm]
    if not usable:
        return PinVerdict.NO_KEY
    decode = _format0 if block_format == 0 else _format4
    for zone_key in usable:
        digits = decode(block, pan, zone_key.key)
        if digits is None:
            continue
        if pin_matches(keyring, pin_scope, expected_hash, digits):
            return PinVerdict.MATCH
        return PinVerdict.MISMATCH
    return PinVerdict.UNREADABLE
