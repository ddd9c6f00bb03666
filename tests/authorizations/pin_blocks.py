"""PIN blocks built the way a card processor builds them, written from ISO 9564-1 for the tests
and independent of cardcore's own decoder (which only ever deciphers)."""

import os

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# A double-length TDES ZPK and an AES-256 one, as a processor would hand them over.
TDES_ZPK = "0123456789ABCDEFFEDCBA9876543210"
TDES3_ZPK = "0123456789ABCDEF1032547698BADCFE89ABCDEF01234567"
AES_ZPK = "603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4"


def _tdes(key: bytes) -> TripleDES:
    return TripleDES(key if len(key) == 24 else key + key[:8])  # K1 K2 is K1 K2 K1


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _encipher(algorithm: algorithms.AES | TripleDES, data: bytes) -> bytes:
    encryptor = Cipher(algorithm, modes.ECB()).encryptor()  # noqa: S305 - ISO 9564's construction
    return encryptor.update(data) + encryptor.finalize()


def format0_clear(pin: str, pan: str) -> bytes:
    """Control 0, length, digits, F-fill; XOR 0000 and the 12 PAN digits before the check digit."""
    pin_field = f"0{len(pin):X}{pin}".ljust(16, "F")
    account_field = "0000" + pan[-13:-1]
    return _xor(bytes.fromhex(pin_field), bytes.fromhex(account_field))


def format0_block(pin: str, pan: str, zpk_hex: str = TDES_ZPK) -> str:
    return _encipher(_tdes(bytes.fromhex(zpk_hex)), format0_clear(pin, pan)).hex().upper()


def format4_block(pin: str, pan: str, zpk_hex: str = AES_ZPK, fill: bytes | None = None) -> str:
    """ISO 9564-1:2017 format 4: PIN field (4, length, digits, A-fill, 8 random bytes), PAN field
    (PAN length − 12, the PAN, 0-fill), enciphered E(K, E(K, PIN field) ⊕ PAN field)."""
    pin_field = bytes.fromhex(f"4{len(pin):X}{pin}".ljust(16, "A")) + (fill or os.urandom(8))
    account = pan if len(pan) >= 12 else pan.rjust(12, "0")
    pan_field = bytes.fromhex(f"{max(len(pan) - 12, 0)}{account}".ljust(32, "0"))
    key = algorithms.AES(bytes.fromhex(zpk_hex))
    return _encipher(key, _xor(_encipher(key, pin_field), pan_field)).hex().upper()


def kcv(algorithm: str, zpk_hex: str) -> str:
    """TDES: a zero block enciphered; AES: CMAC of a zero block (ANSI X9.24-1). First 3 bytes."""
    key = bytes.fromhex(zpk_hex)
    if algorithm == "TDES":
        return _encipher(_tdes(key), bytes(8))[:3].hex().upper()
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(bytes(16))
    return mac.finalize()[:3].hex().upper()
