"""Credentials, tokens, cardholder sessions and admin logins: the rules, with no HTTP."""

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.auth.events import CredentialCreated, CredentialRevoked
from cardcore.config import Settings
from cardcore.kit.credentials import active_credential, program_mode
from cardcore.kit.crypto import Keyring, password_hasher, sha256_digest
from cardcore.kit.errors import CardcoreError, OAuthError
from cardcore.kit.outbox import record_event
from cardcore.kit.principals import Principal, PrincipalKind
from cardcore.kit.tokens import Audience, TokenKeys
from cardcore.models import (
    AdminUser,
    CardholderSession,
    Credential,
    CustomerStatus,
    ProgramStatus,
    RefreshToken,
    User,
    ids,
)
from cardcore.programs.repository import AdminUserRepository

CREDENTIAL_TYPES = ("client_credentials", "jws")
LOCKOUT_AFTER_FAILURES = 5
LOCKOUT_DURATION = timedelta(minutes=15)
REFRESH_TOKEN_PREFIX = "crt_"  # noqa: S105 - a prefix, not a secret

# Verified against when the email is unknown, so a wrong email costs as long as a wrong password
# and response times do not reveal which admins exist.
_DUMMY_PASSWORD_HASH = password_hasher.hash(secrets.token_urlsafe(16))


# -- credentials ---------------------------------------------------------------------------------


async def create_credential(
    session: AsyncSession, keyring: Keyring, *, program_id: str, type: str, name: str
) -> tuple[Credential, str]:
    """A new credential and its secret, which is returned here once and never again. The secret
    names the program's mode (`cs_live_…`, `jws_test_…`), as API keys do."""
    if type not in CREDENTIAL_TYPES:
        raise CardcoreError("VALIDATION_ERROR", f"Unknown credential type {type!r}.")
    mode = await program_mode(session, program_id)
    credential = Credential(program_id=program_id, type=type, name=name)
    session.add(credential)
    await session.flush()
    if type == "client_credentials":
        secret = f"cs_{mode}_" + secrets.token_urlsafe(32)
        credential.secret_hash = sha256_digest(secret)
    else:
        # RFC 7518 §3.2: an HS512 key must be at least 512 bits, and standard JOSE clients
        # (jwcrypto, for one) refuse to sign with a shorter one.
        secret = f"jws_{mode}_" + secrets.token_urlsafe(64)
        credential.secret_ciphertext = keyring.encrypt(
            secret.encode(), f"credential:{credential.id}"
        )
    await session.flush()
    record_event(
        session,
        program_id=program_id,
        object_id=credential.id,
        data=CredentialCreated(id=credential.id, type=type, name=name),
    )
    return credential, secret


async def revoke_credential(session: AsyncSession, credential: Credential) -> Credential:
    if credential.revoked_at is None:
        credential.revoked_at = await session.scalar(select(func.now()))
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.credential_id == credential.id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )
        await session.flush()
        record_event(
            session,
            program_id=credential.program_id,
            object_id=credential.id,
            data=CredentialRevoked(id=credential.id, type=credential.type, name=credential.name),
        )
    return credential


# -- OAuth tokens --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


async def _new_refresh_token(
    session: AsyncSession,
    *,
    program_id: str,
    ttl_seconds: int,
    family_id: str | None = None,
    credential_id: str | None = None,
    session_id: str | None = None,
) -> str:
    token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            program_id=program_id,
            family_id=family_id or uuid.uuid4().hex,
            token_hash=sha256_digest(token),
            credential_id=credential_id,
            session_id=session_id,
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds),
        )
    )
    await session.flush()
    return token


async def client_credentials_grant(
    session: AsyncSession, tokens: TokenKeys, settings: Settings, *, client_id: str, secret: str
) -> tuple[Credential, IssuedTokens]:
    found = await active_credential(session, client_id, type="client_credentials")
    expected = found[0].secret_hash if found else None
    # Compare even when there is no such client, so timing does not tell which ids exist.
    if not hmac.compare_digest(expected or b"\0" * 32, sha256_digest(secret)) or found is None:
        raise OAuthError("invalid_client", "Client authentication failed.", 401)
    credential, program_status = found
    if program_status != ProgramStatus.ACTIVE:
        raise OAuthError("unauthorized_client", "This program is suspended.", 400)
    credential.last_used_at = datetime.now(UTC)
    issued = await _partner_tokens(session, tokens, settings, credential, family_id=None)
    return credential, issued


def partner_principal(credential: Credential) -> Principal:
    return Principal(
        PrincipalKind.PARTNER,
        program_id=credential.program_id,
        actor_id=credential.id,
        channel="jwt",
    )


async def _token_pair(
    session: AsyncSession,
    tokens: TokenKeys,
    settings: Settings,
    *,
    audience: Audience,
    subject: str,
    program_id: str,
    ttl_seconds: int,
    family_id: str | None,
    credential_id: str | None = None,
    session_id: str | None = None,
) -> IssuedTokens:
    """An access token and the next refresh token of a family (a new family when None)."""
    access = await tokens.issue(
        audience=audience,
        subject=subject,
        program_id=program_id,
        ttl_seconds=ttl_seconds,
        extra={"sid": session_id} if session_id else None,
    )
    refresh = await _new_refresh_token(
        session,
        program_id=program_id,
        ttl_seconds=settings.refresh_token_ttl_seconds,
        family_id=family_id,
        credential_id=credential_id,
        session_id=session_id,
    )
    return IssuedTokens(access, ttl_seconds, refresh, settings.refresh_token_ttl_seconds)


async def _partner_tokens(
    session: AsyncSession,
    tokens: TokenKeys,
    settings: Settings,
    credential: Credential,
    *,
    family_id: str | None,
) -> IssuedTokens:
    return await _token_pair(
        session,
        tokens,
        settings,
        audience=Audience.PARTNER,
        subject=credential.id,
        program_id=credential.program_id,
        ttl_seconds=settings.access_token_ttl_seconds,
        family_id=family_id,
        credential_id=credential.id,
    )


async def refresh_token_grant(
    session: AsyncSession, tokens: TokenKeys, settings: Settings, *, refresh_token: str
) -> tuple[str, IssuedTokens]:
    """Spend a refresh token for new tokens. Returns (subject id, tokens). A token that was
    already spent means it leaked: its whole family dies, and that is committed even though the
    request fails."""
    row = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == sha256_digest(refresh_token))
        .with_for_update()
    )
    invalid = OAuthError("invalid_grant", "The refresh token is invalid, expired or revoked.")
    if row is None or row.revoked_at is not None or row.expires_at <= datetime.now(UTC):
        raise invalid
    if row.used_at is not None:
        await _revoke_family(session, row.family_id)
        if row.session_id is not None:
            await session.execute(
                update(CardholderSession)
                .where(CardholderSession.id == row.session_id)
                .values(revoked_at=func.coalesce(CardholderSession.revoked_at, func.now()))
            )
        raise OAuthError(
            "invalid_grant",
            "This refresh token was already used; every token of its family is now revoked.",
            persist_changes=True,
        )
    row.used_at = datetime.now(UTC)
    if row.credential_id is not None:
        found = await active_credential(session, row.credential_id, type="client_credentials")
        if found is None or found[1] != ProgramStatus.ACTIVE:
            raise invalid
        issued = await _partner_tokens(session, tokens, settings, found[0], family_id=row.family_id)
        return found[0].id, issued
    assert row.session_id is not None
    cardholder_session = await session.get(CardholderSession, row.session_id)
    if cardholder_session is None or not _session_alive(cardholder_session):
        raise invalid
    issued = await _session_tokens(
        session, tokens, settings, cardholder_session, family_id=row.family_id
    )
    return cardholder_session.id, issued


async def _revoke_family(session: AsyncSession, family_id: str) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


# -- cardholder sessions -------------------------------------------------------------------------


def _session_alive(cardholder_session: CardholderSession) -> bool:
    return cardholder_session.revoked_at is None


async def _session_tokens(
    session: AsyncSession,
    tokens: TokenKeys,
    settings: Settings,
    cardholder_session: CardholderSession,
    *,
    family_id: str | None,
) -> IssuedTokens:
    return await _token_pair(
        session,
        tokens,
        settings,
        audience=Audience.CARDHOLDER,
        subject=cardholder_session.user_id,
        program_id=cardholder_session.program_id,
        ttl_seconds=settings.session_ttl_seconds,
        family_id=family_id,
        session_id=cardholder_session.id,
    )


async def create_session(
    session: AsyncSession,
    tokens: TokenKeys,
    settings: Settings,
    *,
    user: User,
    device_id: str | None,
    strong_auth: bool,
) -> tuple[CardholderSession, IssuedTokens]:
    if user.status != CustomerStatus.ACTIVE:
        raise CardcoreError("FORBIDDEN", "This user is not active.")
    now = datetime.now(UTC)
    cardholder_session = CardholderSession(
        program_id=user.program_id,
        user_id=user.id,
        device_id=device_id,
        strong_auth_at=now if strong_auth else None,
        expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
    )
    session.add(cardholder_session)
    await session.flush()
    issued = await _session_tokens(session, tokens, settings, cardholder_session, family_id=None)
    return cardholder_session, issued


async def revoke_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(
        update(CardholderSession)
        .where(CardholderSession.id == session_id, CardholderSession.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.session_id == session_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


# -- ops staff -----------------------------------------------------------------------------------


async def admin_login(
    session: AsyncSession,
    tokens: TokenKeys,
    settings: Settings,
    *,
    program_id: str,
    email: str,
    password: str,
) -> tuple[AdminUser, str]:
    admin = None
    if ids.is_valid("prg", program_id):
        admin = await AdminUserRepository(session, program_id).by_email(email, for_update=True)
    now = datetime.now(UTC)
    if admin is not None and admin.locked_until is not None and admin.locked_until > now:
        raise CardcoreError("ACCOUNT_LOCKED")
    try:
        password_hasher.verify(admin.password_hash if admin else _DUMMY_PASSWORD_HASH, password)
        password_ok = admin is not None
    except (VerificationError, InvalidHashError):
        password_ok = False
    if admin is None or not password_ok or not admin.active:
        if admin is not None:
            admin.failed_logins += 1
            if admin.failed_logins >= LOCKOUT_AFTER_FAILURES:
                admin.failed_logins = 0
                admin.locked_until = now + LOCKOUT_DURATION
            await session.flush()
        raise CardcoreError(
            "UNAUTHENTICATED", "Wrong program, email or password.", persist_changes=True
        )
    admin.failed_logins = 0
    admin.locked_until = None
    token = await tokens.issue(
        audience=Audience.ADMIN,
        subject=admin.id,
        program_id=admin.program_id,
        ttl_seconds=settings.admin_token_ttl_seconds,
    )
    return admin, token
