"""`Idempotency-Key` for every POST.

The first request with a key takes a transaction-scoped advisory lock on (caller, key), runs, and
stores its 2xx response in the same transaction as its effects. So:

- a retry after success finds the stored response and gets it back, byte for byte, with
  `Idempotent-Replayed: true`; the work is not done again;
- a retry while the first is still running cannot take the lock and gets 409
  `IDEMPOTENCY_KEY_IN_PROGRESS` at once instead of queueing behind it;
- the same key with another method, path or body gets 422 `IDEMPOTENCY_KEY_REUSED`;
- a request that failed stored nothing (its transaction rolled back, effects and all), so a retry
  runs afresh. That is safe for money: a failed request moved nothing.

Records live `CARDCORE_IDEMPOTENCY_TTL_SECONDS` (24 h by default); an expired key is free again.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from cardcore.kit import app_state
from cardcore.kit.access import CurrentPrincipal
from cardcore.kit.crypto import Keyring
from cardcore.kit.errors import CardcoreError
from cardcore.kit.jobs import JobContext, JobKind
from cardcore.kit.session import DbSession
from cardcore.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


class IdempotentReplay(Exception):
    """Raised by the guard when a stored answer exists; the route class turns it into that
    answer, so the handler never runs."""

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body


@dataclass(frozen=True, slots=True)
class ClaimedKey:
    scope: str
    key: str
    request_hash: bytes


def request_fingerprint(keyring: Keyring, method: str, path: str, query: str, body: bytes) -> bytes:
    """What tells a retry from another request under the same key. Keyed: a body may hold a PIN
    or most of a PAN (decrypted from its JWE), and a plain hash of it would give those back to
    anyone with the table and a few thousand guesses."""
    parts = b"".join(
        len(part).to_bytes(4, "big") + part
        for part in (method.encode(), path.encode(), query.encode())
    )
    return keyring.keyed_digest(parts + body, "idempotency")


async def claim_idempotency_key(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Makes a POST safe to retry: the same key returns the first answer "
            "(24 h). Printable ASCII, at most 255 characters; a UUID is a good choice.",
        ),
    ] = None,
) -> None:
    scope = principal.idempotency_scope
    if idempotency_key is None or scope is None:
        return
    fingerprint = request_fingerprint(
        app_state.keyring(request),
        request.method,
        request.url.path,
        request.url.query,
        await request.body(),
    )
    locked = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:lock_key, 0))"),
        {"lock_key": f"idempotency\x1f{scope}\x1f{idempotency_key}"},
    )
    if not locked:
        raise CardcoreError("IDEMPOTENCY_KEY_IN_PROGRESS")
    stored = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == idempotency_key,
            IdempotencyRecord.expires_at > func.now(),
        )
    )
    if stored is not None:
        if stored.request_hash != fingerprint:
            raise CardcoreError("IDEMPOTENCY_KEY_REUSED")
        raise IdempotentReplay(stored.status_code, stored.response_body)
    request.state.idempotency = ClaimedKey(scope, idempotency_key, fingerprint)


IdempotencyGuard = Depends(claim_idempotency_key)


async def store_response(session: DbSession, request: Request, response: Response) -> None:
    claimed: ClaimedKey | None = getattr(request.state, "idempotency", None)
    if claimed is None or not 200 <= response.status_code < 300:
        return
    ttl = timedelta(seconds=app_state.settings(request).idempotency_ttl_seconds)
    values = {
        "scope": claimed.scope,
        "key": claimed.key,
        "request_hash": claimed.request_hash,
        "status_code": response.status_code,
        "response_body": bytes(response.body),
        "expires_at": datetime.now(UTC) + ttl,
        "created_at": datetime.now(UTC),
    }
    # Holding the advisory lock and having found no live record, a conflict can only be an
    # expired record of the same key, which this one replaces.
    statement = insert(IdempotencyRecord).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["scope", "key"],
            set_={
                name: statement.excluded[name] for name in values if name not in ("scope", "key")
            },
        )
    )


async def purge_expired(
    session: AsyncSession, payload: dict[str, Any], context: JobContext
) -> None:
    """Expired keys are free again already (lookups ignore them); this reclaims the space."""
    await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= func.now())
    )


PURGE_EXPIRED = JobKind("idempotency.purge_expired", purge_expired, every=timedelta(minutes=5))
