"""Who may call a route: the caller's principal (kit/principals.py), resolved once per request,
and the guards routes declare.

Four ways in, each documented as an OpenAPI security scheme:
- `X-API-Key`: a partner API key (or a `network` key for the card processor);
- `Authorization: Bearer <jwt>` or `X-Auth-Token: <jwt>`: an access token from
  `POST /v1/auth/token` (partner), a cardholder session, or an admin login;
- `X-JWS-Signature`: a detached HS512 signature over the request (kit/jws.py).

A request carries exactly one credential. A credential that is present but wrong is refused
(401) even on routes that accept anonymous callers: a typo must not silently downgrade the caller.
A route accepting other kinds of principal answers 403.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit import app_state, jws
from cardcore.kit.credentials import (
    active_credential,
    authenticate_api_key,
    jws_secret,
    program_mode,
)
from cardcore.kit.errors import CardcoreError, Forbidden, Unauthenticated, validation_error
from cardcore.kit.principals import ANONYMOUS, Principal, PrincipalKind
from cardcore.kit.roles import allowed
from cardcore.kit.session import DbSession
from cardcore.kit.tokens import Audience, InvalidToken, lifetimes
from cardcore.models import (
    AdminUser,
    CardholderSession,
    CustomerStatus,
    JwsRequestId,
    Program,
    ProgramMode,
    ProgramStatus,
    User,
    ids,
)

api_key_header = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="A partner API key (`ck_live_…` / `ck_test_…`) from `cardcore bootstrap` or "
    "`POST /v1/api-keys`; a `network` key for the card processor.",
    auto_error=False,
)
bearer = HTTPBearer(
    scheme_name="BearerJWT",
    bearerFormat="JWT",
    description="An access token: from `POST /v1/auth/token` (partner), "
    "`POST /v1/users/{id}/sessions` (cardholder) or `POST /v1/admin/auth/login` (ops).",
    auto_error=False,
)
auth_token_header = APIKeyHeader(
    name="X-Auth-Token",
    scheme_name="XAuthToken",
    description="The same access token as `Authorization: Bearer`, in the header some "
    "processors' clients send.",
    auto_error=False,
)
jws_header = APIKeyHeader(
    name=jws.HEADER,
    scheme_name="JWSSignature",
    description="`<protected>..<signature>`: detached HS512 JWS whose protected header is "
    '`{"uri", "auth_id", "method", "params", "alg": "HS512"}` and whose payload is the raw body. '
    "Each request signs a unique `request_id`: a member of the JSON body, or a `request_id` "
    "parameter of the protected header (the only way for a request without a JSON body); "
    "`X-Request-Id` does not count.",
    auto_error=False,
)

_TOKEN_KINDS = {
    Audience.PARTNER.value: PrincipalKind.PARTNER,
    Audience.CARDHOLDER.value: PrincipalKind.CARDHOLDER,
    Audience.ADMIN.value: PrincipalKind.ADMIN,
}


async def get_principal(
    request: Request,
    session: DbSession,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
    bearer_token: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
    auth_token: Annotated[str | None, Security(auth_token_header)] = None,
    jws_signature: Annotated[str | None, Security(jws_header)] = None,
) -> Principal:
    token = bearer_token.credentials if bearer_token else None
    presented = [c for c in (api_key, token, auth_token, jws_signature) if c is not None]
    if len(presented) > 1:
        raise Unauthenticated("Send exactly one credential.")
    principal = ANONYMOUS
    if api_key is not None:
        principal = await _from_api_key(request, session, api_key)
    elif token is not None or auth_token is not None:
        principal = await _from_access_token(request, session, token or auth_token or "")
    elif jws_signature is not None:
        principal = await _from_jws(request, jws_signature)
    request.state.principal = principal
    return principal


async def _from_api_key(request: Request, session: AsyncSession, secret: str) -> Principal:
    key = await authenticate_api_key(
        session,
        secret,
        touch_interval_seconds=app_state.settings(request).api_key_touch_interval_seconds,
    )
    if key is None:
        raise Unauthenticated("The API key is not valid, or has been revoked.")
    _require_active(key.program_status)
    kind = PrincipalKind.NETWORK if key.kind == "network" else PrincipalKind.PARTNER
    return Principal(kind, program_id=key.program_id, actor_id=key.id, channel="api_key")


def _require_active(program_status: str) -> None:
    if program_status != ProgramStatus.ACTIVE:
        raise Forbidden("This program is suspended.")


async def _from_access_token(request: Request, session: AsyncSession, token: str) -> Principal:
    try:
        claims = await app_state.token_keys(request).verify(
            token, max_lifetimes=lifetimes(app_state.settings(request))
        )
    except InvalidToken as exc:
        raise Unauthenticated(f"The access token is not valid ({exc}).") from exc
    # We issue one audience per token; anything else did not come from us.
    kind = _TOKEN_KINDS.get(claims["aud"]) if isinstance(claims["aud"], str) else None
    if kind is None:
        raise Unauthenticated("The access token is not valid (audience).")
    program_id, subject = claims["prg"], claims["sub"]
    if kind is PrincipalKind.PARTNER:
        found = await active_credential(session, subject, type="client_credentials")
        if found is None or found[0].program_id != program_id:
            raise Unauthenticated("The credential behind this token was revoked.")
        _require_active(found[1])
        return Principal(kind, program_id=program_id, actor_id=subject, channel="jwt")
    if kind is PrincipalKind.CARDHOLDER:
        return await _cardholder(session, claims, program_id, subject)
    return await _admin(session, program_id, subject)


async def _cardholder(
    session: AsyncSession, claims: dict[str, Any], program_id: str, user_id: str
) -> Principal:
    session_id = claims.get("sid")
    ended = Unauthenticated("This session has ended.")
    if not isinstance(session_id, str) or not ids.is_valid("ses", session_id):
        raise ended
    row = (
        await session.execute(
            select(CardholderSession, User.status, Program.status)
            .join(User, User.id == CardholderSession.user_id)
            .join(Program, Program.id == CardholderSession.program_id)
            .where(CardholderSession.id == session_id)
        )
    ).one_or_none()
    if row is None:
        raise ended
    cardholder_session, user_status, program_status = row
    if (
        cardholder_session.revoked_at is not None
        or cardholder_session.user_id != user_id
        or cardholder_session.program_id != program_id
        or user_status != CustomerStatus.ACTIVE
    ):
        raise ended
    _require_active(program_status)
    return Principal(
        PrincipalKind.CARDHOLDER,
        program_id=program_id,
        actor_id=user_id,
        channel="session",
        session_id=session_id,
        strong_auth_at=cardholder_session.strong_auth_at,
    )


async def _admin(session: AsyncSession, program_id: str, admin_id: str) -> Principal:
    inactive = Unauthenticated("This admin account is not active.")
    if not ids.is_valid("adm", admin_id):
        raise inactive
    row = (
        await session.execute(
            select(AdminUser, Program.status)
            .join(Program, Program.id == AdminUser.program_id)
            .where(AdminUser.id == admin_id)
        )
    ).one_or_none()
    if row is None or not row[0].active or row[0].program_id != program_id:
        raise inactive
    _require_active(row[1])
    # The role is read from the database on every request, so a demotion takes effect at once.
    return Principal(
        PrincipalKind.ADMIN,
        program_id=program_id,
        actor_id=admin_id,
        channel="admin",
        role=row[0].role,
    )


async def _from_jws(request: Request, signature: str) -> Principal:
    """Verify a signed request. The credential lookup and the request id's one use are done in a
    transaction of their own, committed before the request runs: a request id is spent even if
    the request then fails, so a captured signed request can never be replayed later."""
    try:
        auth_id = jws.auth_id_of(signature)
    except jws.InvalidSignature as exc:
        raise Unauthenticated(str(exc)) from exc
    # What was signed: the route class keeps the body as received (decrypted, if it came as a
    # JWE) before taking the signed request_id out of what the route reads.
    body = getattr(request.state, "jws_signed_body", None)
    if body is None:
        body = await request.body()
    async with app_state.sessionmaker(request)() as own:
        found = await active_credential(own, auth_id, type="jws")
        if found is None:
            raise Unauthenticated("Unknown or revoked auth_id.")
        credential, program_status = found
        try:
            header = jws.verify_request_signature(
                signature,
                secret=jws_secret(app_state.keyring(request), credential),
                method=request.method,
                # The path and query as sent, percent-encoding and all, as the caller signed
                # them (the decoded path would not match a signer that escaped a character).
                path=_raw_path(request),
                query=request.url.query,
                body=body,
            )
        except jws.InvalidSignature as exc:
            raise Unauthenticated(str(exc)) from exc
        _require_active(program_status)
        try:
            request_id = jws.request_id_of(header, body)
        except jws.InvalidRequestId as exc:
            raise validation_error("request_id", exc.code, exc.message) from exc
        own.add(JwsRequestId(credential_id=credential.id, request_id=request_id))
        try:
            await own.commit()
        except IntegrityError as exc:
            raise CardcoreError("DUPLICATE_REQUEST_ID") from exc
    return Principal(
        PrincipalKind.PARTNER,
        program_id=credential.program_id,
        actor_id=credential.id,
        channel="jws",
    )


def _raw_path(request: Request) -> str:
    raw: bytes | None = request.scope.get("raw_path")
    return raw.decode("latin-1") if raw else request.url.path


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(*kinds: PrincipalKind) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def guard(principal: CurrentPrincipal) -> Principal:
        if principal.kind is PrincipalKind.ANONYMOUS:
            raise Unauthenticated()
        if principal.kind not in kinds:
            names = " or ".join(kind.value for kind in kinds)
            raise Forbidden(f"This route is for {names} credentials.")
        return principal

    return guard


def require_admin(action: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """An ops route: an admin principal whose role the matrix allows for `action`."""
    admin_only = require(PrincipalKind.ADMIN)

    async def guard(principal: CurrentPrincipal) -> Principal:
        await admin_only(principal)
        if not allowed(principal.role, action):
            raise Forbidden(f"The {principal.role} role may not do this.")
        return principal

    return guard


def partner_or_admin(action: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A route both the partner and (for roles the matrix allows) ops staff may call."""

    async def guard(principal: CurrentPrincipal) -> Principal:
        if principal.kind is PrincipalKind.ANONYMOUS:
            raise Unauthenticated()
        if principal.kind is PrincipalKind.PARTNER:
            return principal
        if principal.kind is PrincipalKind.ADMIN and allowed(principal.role, action):
            return principal
        raise Forbidden("These credentials may not perform this action.")

    return guard


Partner = Annotated[Principal, Security(require(PrincipalKind.PARTNER))]


async def _test_mode_partner(
    principal: Annotated[Principal, Security(require(PrincipalKind.PARTNER))], session: DbSession
) -> Principal:
    """A partner of a test program. Read from the program on each call (not from the secret's
    prefix: OAuth tokens and JWS signatures carry none), so a live program's credential of any
    kind is refused before the route reads its body."""
    if await program_mode(session, principal.tenant_id) != ProgramMode.TEST:
        raise CardcoreError("TEST_MODE_ONLY")
    return principal


TestModePartner = Annotated[Principal, Depends(_test_mode_partner)]
Cardholder = Annotated[Principal, Security(require(PrincipalKind.CARDHOLDER))]
Network = Annotated[Principal, Security(require(PrincipalKind.NETWORK))]
