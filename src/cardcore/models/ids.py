"""Public ids: a type prefix and a time-sortable ULID, stored as a native UUID.

`prg_01jd3…` in the API and in Python; a 16-byte `uuid` in PostgreSQL, so indexes stay small and
ordering by id is ordering by creation time. The 26-character body is Crockford base32 in lower
case, whose alphabet sorts in the same order as the numbers it encodes.
"""

import base64
import functools
import uuid

from sqlalchemy import types
from sqlalchemy.dialects.postgresql import UUID
from ulid import ULID

_BODY_LENGTH = 26
_DIGITS = "0123456789abcdefghjkmnpqrstvwxyz"
_ALPHABET = frozenset(_DIGITS)
# The same digit values in the alphabets Python's C code speaks: int(…, 32) reads 0-9a-v, and
# b32encode writes RFC 4648's A-Z2-7. Translating to and from them keeps the base32 work out of
# Python loops: an id to its UUID in 1.6 µs instead of the ULID library's 4 µs, its public form
# in 2.0 instead of 2.5 (every new row's ids are made, then turned into UUIDs for the database).
_FROM_DIGITS = str.maketrans(_DIGITS, "0123456789abcdefghijklmnopqrstuv")
_TO_DIGITS = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _DIGITS.encode())


class MalformedId(ValueError):
    """An id bound to a column of another type, or not an id at all."""


def _body(value: int) -> str:
    """The 26 digits of a 128-bit value: b32encode writes 8 digits per 5 bytes from the left, so
    20 bytes put the value's 130-bit field in the last 26."""
    return base64.b32encode(value.to_bytes(20, "big"))[6:].translate(_TO_DIGITS).decode()


def new_id(prefix: str) -> str:
    # ULID() keeps ids made in the same millisecond in order (the library's monotonic generator).
    return f"{prefix}_{_body(int(ULID()))}"


# Every id crosses this boundary on every statement (tens per request); the same ids recur
# (a program's, its accounts', a busy card's), and both directions are pure, so a small cache
# takes the base32 work off the hot path. Small, because each entry is three objects the garbage
# collector tracks and, living longer than a request, walks on every full collection: at 50,000
# entries, full collections stopped a server process for 50–140 ms every one to five seconds
# under load (4,096: under 50 ms).
@functools.lru_cache(maxsize=4_096)
def to_uuid(prefix: str, public_id: str) -> uuid.UUID | None:
    """The UUID behind `public_id`, or None when it is not a well-formed id of this type."""
    head, sep, body = public_id.partition("_")
    if head != prefix or not sep or len(body) != _BODY_LENGTH or not _ALPHABET.issuperset(body):
        return None
    if body[0] > "7":  # 26 base32 digits hold 130 bits; a ULID's first digit carries only 3
        return None
    return uuid.UUID(int=int(body.translate(_FROM_DIGITS), 32))


@functools.lru_cache(maxsize=4_096)
def from_uuid(prefix: str, value: uuid.UUID) -> str:
    return f"{prefix}_{_body(value.int)}"


def is_valid(prefix: str, public_id: str) -> bool:
    return to_uuid(prefix, public_id) is not None


class PrefixedId(types.TypeDecorator[str]):
    """A column holding `prefix_…` ids as PostgreSQL `uuid`."""

    impl = UUID(as_uuid=True)
    cache_ok = True

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def process_bind_param(self, value: str | None, dialect: object) -> uuid.UUID | None:
        if value is None:
            return None
        decoded = to_uuid(self.prefix, value)
        if decoded is None:
            # Callers validate ids from the outside world first (see TenantRepository); reaching
            # here means one slipped through, which the error handler answers as an unknown id
            # (404). The value stays out of the message: messages reach logs.
            raise MalformedId(f"not a {self.prefix}_ id")
        return decoded

    def process_result_value(self, value: uuid.UUID | None, dialect: object) -> str | None:
        return None if value is None else from_uuid(self.prefix, value)

    def __repr__(self) -> str:
        return f"PrefixedId({self.prefix!r})"
