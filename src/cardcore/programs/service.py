"""Programs, API keys and admin users: the rules, with no HTTP in sight. Services flush; the
caller's transaction commits."""

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.crypto import password_hasher, sha256_digest
from cardcore.kit.database_errors import flush_unique
from cardcore.kit.errors import CardcoreError
from cardcore.kit.outbox import record_event
from cardcore.models import AdminUser, ApiKey, Program, ProgramMode
from cardcore.programs.events import ApiKeyCreated, ApiKeyRevoked

API_KEY_KINDS = ("partner", "network")
ADMIN_ROLES = ("admin", "manager", "employee")


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    id: str
    program_id: str
    kind: str
    program_status: str


def api_key_prefix(mode: str) -> str:
    return f"ck_{ProgramMode(mode)}_"


async def create_program(
    session: AsyncSession,
    *,
    name: str,
    currencies: list[str] | None = None,
    mode: ProgramMode = ProgramMode.LIVE,
) -> Program:
    program = Program(name=name, currencies=sorted(set(currencies or [])), mode=mode.value)
    session.add(program)
    await session.flush()
    return program


async def program_mode(session: AsyncSession, program_id: str) -> ProgramMode:
    """The program's mode, read from the database: the one source every credential's prefix and
    the simulation routes' guard go by."""
    mode = await session.scalar(select(Program.mode).where(Program.id == program_id))
    if mode is None:
        raise CardcoreError("NOT_FOUND", "No such program.")
    return ProgramMode(mode)


async def create_api_key(
    session: AsyncSession, *, program_id: str, name: str, kind: str = "partner"
) -> tuple[ApiKey, str]:
    """A new key and its secret. The secret is returned once, here, and never stored. Its prefix
    is the program's mode, never the caller's choice, so a key cannot claim another mode."""
    if kind not in API_KEY_KINDS:
        raise CardcoreError("VALIDATION_ERROR", f"Unknown API key kind {kind!r}.")
    secret = api_key_prefix(await program_mode(session, program_id)) + secrets.token_urlsafe(32)
    key = ApiKey(
        program_id=program_id,
        name=name,
        kind=kind,
        secret_hash=sha256_digest(secret),
        display_prefix=secret[:12],
    )
    session.add(key)
    await session.flush()
    record_event(
        session,
        program_id=program_id,
        object_id=key.id,
        data=ApiKeyCreated(id=key.id, name=key.name, kind=key.kind, prefix=key.display_prefix),
    )
    return key, secret


async def revoke_api_key(session: AsyncSession, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        revoked_at = await session.scalar(select(func.now()))
        assert revoked_at is not None
        key.revoked_at = revoked_at
        await session.flush()
        record_event(
            session,
            program_id=key.program_id,
            object_id=key.id,
            data=ApiKeyRevoked(id=key.id, name=key.name, revoked_at=revoked_at.isoformat()),
        )
    return key


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


def generate_password() -> str:
    return secrets.token_urlsafe(18)


async def create_admin_user(
    session: AsyncSession, *, program_id: str, email: str, password: str, role: str
) -> AdminUser:
    if role not in ADMIN_ROLES:
        raise CardcoreError("VALIDATION_ERROR", f"Unknown admin role {role!r}.")
    admin = AdminUser(
        program_id=program_id,
        email=email.strip().lower(),
        password_hash=password_hasher.hash(password),
        role=role,
    )
    session.add(admin)
    await flush_unique(session, "An admin with this email already exists in this program.")
    return admin
