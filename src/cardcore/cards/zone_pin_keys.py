"""Zone PIN keys: the keys a program shares with its card processor for PIN blocks.

The processor (or the scheme) and the issuer agree on a ZPK in a key ceremony; ops install it here
with `cardcore keys set-zpk` (from stdin, as one key or as components that are XORed together) or
`POST /v1/admin/zone-pin-keys` (JWE required). TDES keys (double or triple length) serve ISO 9564
format 0 blocks, AES keys (128, 192 or 256 bits) format 4. The key is kept only wrapped by the
master keyring, bound to its row; the API and the CLI show it only by its key check value (KCV):
TDES — the first 3 bytes of a zero block enciphered under the key; AES — the first 3 bytes of the
AES-CMAC of a 16-byte zero block (ANSI X9.24-1), which is what an HSM and the processor display.

Installing a key replaces the current one. The replaced key can keep verifying for a grace period
(at most `MAX_GRACE`), for messages already enciphered under it; after that only the new key
counts.
"""

import itertools
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards.pin_blocks import AES, TDES, ZoneKey, tdes
from cardcore.cards.repository import ZonePinKeyRepository
from cardcore.kit.crypto import Keyring
from cardcore.kit.errors import CardcoreError, validation_error
from cardcore.models import Program, ZonePinKey
from cardcore.models.ids import new_id

KEY_BYTES = {TDES: (16, 24), AES: (16, 24, 32)}
MAX_GRACE = timedelta(days=7)
CURRENT, PREVIOUS = "CURRENT", "PREVIOUS"


def key_check_value(algorithm: str, key: bytes) -> str:
    if algorithm == TDES:
        encryptor = Cipher(tdes(key), modes.ECB()).encryptor()  # noqa: S305 - the KCV method
        return (encryptor.update(bytes(8)) + encryptor.finalize())[:3].hex().upper()
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(bytes(16))
    return mac.finalize()[:3].hex().upper()


def parse_key(algorithm: str, components: list[str]) -> bytes:
    """The key from one or more hex components (XORed together, as custodians enter them).
    Errors name the rule, never the value."""
    if algorithm not in KEY_BYTES:
        raise validation_error("algorithm", "INVALID_ALGORITHM", "algorithm is TDES or AES.")
    if not components:
        raise validation_error("key", "REQUIRED", "Give the key, or its components.")
    lengths = KEY_BYTES[algorithm]
    key = b""
    for component in components:
        text = component.strip()
        if len(text) not in {2 * n for n in lengths} or any(
            c not in "0123456789abcdefABCDEF" for c in text
        ):
            sizes = " or ".join(str(2 * n) for n in lengths)
            raise validation_error(
                "key", "INVALID_KEY", f"A {algorithm} key is {sizes} hex digits."
            )
        part = bytes.fromhex(text)
        if key and len(part) != len(key):
            raise validation_error("key", "INVALID_KEY", "Key components differ in length.")
        key = part if not key else bytes(a ^ b for a, b in zip(key, part, strict=True))
    if algorithm == TDES:
        thirds = [key[i : i + 8] for i in range(0, len(key), 8)]
        # K1 = K2 (or K2 = K3) makes triple DES single DES: a 56-bit key, not a ZPK.
        if any(a == b for a, b in itertools.pairwise(thirds)):
            raise validation_error(
                "key", "WEAK_KEY", "The TDES key's parts repeat: that is single DES."
            )
    if len(set(key)) == 1:
        raise validation_error("key", "WEAK_KEY", "The key is one repeated byte.")
    return key


def _context(program_id: str, key_id: str) -> str:
    return f"zone_pin_key:{program_id}:{key_id}"


async def install(
    session: AsyncSession,
    keyring: Keyring,
    *,
    program_id: str,
    algorithm: str,
    key: bytes,
    expected_kcv: str | None = None,
    grace: timedelta = timedelta(0),
    installed_by: str | None = None,
) -> ZonePinKey:
    """Make `key` the program's current ZPK. The key it replaces verifies for `grace` more."""
    kcv = key_check_value(algorithm, key)
    if expected_kcv is not None and expected_kcv.strip().upper() != kcv:
        raise validation_error(
            "kcv",
            "KCV_MISMATCH",
            f"The key's check value is {kcv}, not the one given: check the key (or its "
            "components) against the processor's.",
        )
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise validation_error(
            "previous_key_grace_seconds", "OUT_OF_RANGE", "The grace period is 0 to 7 days."
        )
    # The program row serialises installs, so two at once cannot both become current.
    program = await session.get(Program, program_id, with_for_update=True)
    if program is None:
        raise CardcoreError("NOT_FOUND", "No such program.")
    now = datetime.now(UTC)
    current = await ZonePinKeyRepository(session, program_id).current()
    if current is not None:
        current.replaced_at = now
        current.usable_until = now + grace
        await session.flush()
    key_id = new_id("zpk")
    row = ZonePinKey(
        id=key_id,
        program_id=program_id,
        algorithm=algorithm,
        key_bits=len(key) * 8,
        wrapped_key=keyring.encrypt(key, _context(program_id, key_id)),
        kcv=kcv,
        installed_by=installed_by,
    )
    session.add(row)
    await session.flush()
    return row


async def listed(session: AsyncSession, program_id: str) -> list[ZonePinKey]:
    """The keys that still verify: the current one first, then replaced ones in their grace."""
    return await ZonePinKeyRepository(session, program_id).verifying(datetime.now(UTC))


def status(row: ZonePinKey) -> str:
    return CURRENT if row.replaced_at is None else PREVIOUS


async def usable_keys(session: AsyncSession, keyring: Keyring, program_id: str) -> list[ZoneKey]:
    """The program's usable ZPKs, unwrapped, current first: for `verify_pin_block` alone."""
    return [
        ZoneKey(row.algorithm, keyring.decrypt(row.wrapped_key, _context(program_id, row.id)))
        for row in await listed(session, program_id)
    ]
