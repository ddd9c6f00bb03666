"""Programs, API keys and admin users: the rules, with no HTTP in sight. Services flush; the
caller's transaction commits."""

import secrets

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.credentials import api_key_prefix, program_mode
from cardcore.kit.crypto import password_hasher, sha256_digest
from cardcore.kit.database_errors import flush_unique
from cardcore.kit.errors import CardcoreError
from cardcore.kit.outbox import record_event
from cardcore.models import AdminUser, ApiKey, Program, ProgramMode
from cardcore.programs.events import ApiKeyCreated, ApiKeyRevoked

API_KEY_KINDS = ("partner", "network")
ADMIN_ROLES = ("admin", "manager", "employee")


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
