"""Ids for bulk-loaded rows that SQL, pgbench and the load generator can all compute from `n`.

cardcore ids are ULIDs stored as uuid: 48 bits of milliseconds, then 80 bits. A bench row's id is
`hi` (the load's millisecond and 16 random bits) in the top 64 bits, a small `kind` (which table)
at bit 50, and the row's number `n` in the low 50 bits. So card n's uuid is one SQL expression
of n, and since a public id's last 10 base32 digits are exactly the low 50 bits, its `card_…`
form is a fixed head plus the base32 of n. pgbench can then pick a random card with `\\set n`
and address its card, balance, ledger account and user without a lookup round trip.
"""

import secrets
import time
import uuid
from dataclasses import dataclass

from cardcore.models import ids

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
N_BITS = 50
MAX_N = (1 << N_BITS) - 1

# One kind per kind of bulk-loaded row; pgbench's fresh ids use NEW_KIND_BASE and up.
USER, BALANCE, ACCOUNT, RELOAD, CARD = 1, 2, 3, 4, 5
TRANSACTION, HOLD, POST, AUTH_EVENT, CLEAR_EVENT = 6, 7, 8, 9, 10
NEW_KIND_BASE = 100


def b32_sql(n_sql: str) -> str:
    """SQL for the 10 lower-case Crockford base32 digits of a number below 2**50."""
    digits = [
        f"substr('{ALPHABET}', ((({n_sql}) >> {5 * i}) & 31)::int + 1, 1)" for i in range(9, -1, -1)
    ]
    return " || ".join(digits)


@dataclass(frozen=True)
class IdScheme:
    hi: int

    @classmethod
    def fresh(cls) -> "IdScheme":
        return cls((time.time_ns() // 1_000_000) << 16 | secrets.randbits(16))

    @property
    def hi_hex(self) -> str:
        return f"{self.hi:016x}"

    def uuid(self, kind: int, n: int) -> uuid.UUID:
        assert 0 <= n <= MAX_N
        return uuid.UUID(int=(self.hi << 64) | (kind << N_BITS) | n)

    def public(self, prefix: str, kind: int, n: int) -> str:
        return ids.from_uuid(prefix, self.uuid(kind, n))

    def head(self, prefix: str, kind: int) -> str:
        """`prefix_` and the 16 base32 digits every id of this kind shares."""
        return self.public(prefix, kind, 0)[: len(prefix) + 1 + 16]

    def uuid_sql(self, kind: int, n_sql: str) -> str:
        return f"('{self.hi_hex}' || lpad(to_hex({kind << N_BITS} + ({n_sql})), 16, '0'))::uuid"

    def public_sql(self, prefix: str, kind: int, n_sql: str) -> str:
        return f"('{self.head(prefix, kind)}' || {b32_sql(n_sql)})"
