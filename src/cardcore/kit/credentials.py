"""The credentials a caller presents, checked: API keys (whose prefix names their program's mode),
OAuth clients and JWS secrets. kit/access.py resolves the caller with these; auth/service.py
issues the credentials, and grants tokens for a client that checks out here."""

from dataclasses import dataclass

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.crypto import Keyring, sha256_digest
from cardcore.kit.errors import CardcoreError
from cardcore.models import ApiKey, Credential, Program, ProgramMode, ids


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    id: str
    program_id: str
    kind: str
    program_status: str


def api_key_prefix(mode: str) -> str:
    return f"ck_{ProgramMode(mode)}_"


async def program_mode(session: AsyncSession, program_id: str) -> ProgramMode:
    """The program's mode, read from the database: the one source every credential's prefix and
    the simulation routes' guard go by."""
    mode = await session.scalar(select(Program.mode).where(Program.id == program_id))
    if mode is None:
        raise CardcoreError("NOT_FOUND", "No such program.")
    return ProgramMode(mode)


async def authenticate_api_key(
    session: AsyncSession, secret: str, *, touch_interval_seconds: int
) -> AuthenticatedKey | None:
    if not secret.startswith(("ck_live_", "ck_test_")) or len(secret) > 100:
        return None
    stale = ApiKey.last_used_at.is_(None) | (
        ApiKey.last_used_at < func.now() - text(f"interval '{int(touch_interval_seconds)} seconds'")
    )
    row = (
        await session.execute(
            select(
                ApiKey.id,
                ApiKey.program_id,
                ApiKey.kind,
                Program.status,
                Program.mode,
                stale.label("stale"),
            )
            .join(Program, Program.id == ApiKey.program_id)
            .where(ApiKey.secret_hash == sha256_digest(secret), ApiKey.revoked_at.is_(None))
        )
    ).one_or_none()
    # A key whose prefix names another mode than its program's would let a caller move live
    # money with what it takes for a test key: it is not a key at all. None is made that way;
    # this refuses one written by hand or left over from before programs had modes.
    if row is None or not secret.startswith(api_key_prefix(row.mode)):
        return None
    # Read with the key, so that most requests (those within the interval) write nothing.
    if row.stale:
        await _touch(session, row.id, touch_interval_seconds)
    return AuthenticatedKey(
        id=row.id, program_id=row.program_id, kind=row.kind, program_status=row.status
    )


async def _touch(session: AsyncSession, key_id: str, interval_seconds: int) -> None:
    """Record use at most once per interval. SKIP LOCKED: when another request holds the row it
    is recording the same use, and waiting for it would serialize every request of one key."""
    stale = ApiKey.last_used_at.is_(None) | (
        ApiKey.last_used_at < func.now() - text(f"interval '{int(interval_seconds)} seconds'")
    )
    locked = (
        select(ApiKey.id)
        .where(ApiKey.id == key_id, stale)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == locked)
        .values(last_used_at=func.now())
        .execution_options(synchronize_session=False)
    )


async def active_credential(
    session: AsyncSession, credential_id: str, *, type: str
) -> tuple[Credential, str] | None:
    """The credential and its program's status, if it exists, has this type and is not revoked."""
    if not ids.is_valid("crd", credential_id):
        return None
    row = (
        await session.execute(
            select(Credential, Program.status)
            .join(Program, Program.id == Credential.program_id)
            .where(
                Credential.id == credential_id,
                Credential.type == type,
                Credential.revoked_at.is_(None),
            )
        )
    ).one_or_none()
    return (row[0], row[1]) if row else None


def jws_secret(keyring: Keyring, credential: Credential) -> str:
    assert credential.secret_ciphertext is not None
    return keyring.decrypt(credential.secret_ciphertext, f"credential:{credential.id}").decode()
