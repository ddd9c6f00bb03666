"""OAuth tokens, partner credentials, cardholder sessions and the cardholder's own profile."""

import base64
import binascii
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote

from fastapi import Body, Path, Request, Response, status
from starlette.datastructures import FormData

from cardcore.auth import service
from cardcore.auth.schemas import (
    CredentialCreate,
    CredentialCreated,
    CredentialOut,
    SessionCreate,
    SessionCreated,
    TokenResponse,
)
from cardcore.config import Settings
from cardcore.customers.repository import UserRepository
from cardcore.customers.schemas import UserOut
from cardcore.kit.access import Cardholder, Partner
from cardcore.kit.app_state import KeyringDep, SettingsDep, TokenKeysDep
from cardcore.kit.envelope import Many, One
from cardcore.kit.errors import OAuthError, error_responses
from cardcore.kit.pagination import Pagination
from cardcore.kit.repository import TenantRepository
from cardcore.kit.routing import encryption, router
from cardcore.kit.session import DbSession
from cardcore.kit.tokens import TokenKeys
from cardcore.models import Credential

routes = router(tags=["auth"], encryption="optional")

# Nothing to send is a valid request: the body is optional and defaults to empty.
SessionOptions = Annotated[SessionCreate, Body(default_factory=SessionCreate)]

OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "RFC 6749 error: invalid_request, invalid_grant, unsupported_grant_type"},
    401: {"description": "RFC 6749 error: invalid_client"},
}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM_TYPE = "application/x-www-form-urlencoded"
C = TypeVar("C", bound=CredentialOut)


class CredentialRepository(TenantRepository[Credential]):
    model = Credential
    noun = "credential"


def _credential_out(credential: Credential, schema: type[C], **extra: str) -> C:
    return schema.model_validate(
        {
            "id": credential.id,
            "type": credential.type,
            "name": credential.name,
            "client_id": credential.id if credential.type == "client_credentials" else None,
            "auth_id": credential.id if credential.type == "jws" else None,
            "status": "REVOKED" if credential.revoked_at else "ACTIVE",
            "created_at": credential.created_at,
            "last_used_at": credential.last_used_at,
            "revoked_at": credential.revoked_at,
            **extra,
        }
    )


async def _oauth_form(request: Request) -> FormData:
    if request.headers.get("content-type", "").split(";")[0].strip() != _FORM_TYPE:
        raise OAuthError("invalid_request", f"The body must be {_FORM_TYPE}.")
    form = await request.form()
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise OAuthError("invalid_request", f"{name} must be text.")
    if len(form.getlist("grant_type")) != 1:
        raise OAuthError("invalid_request", "grant_type is required, once.")
    return form


def _client_authentication(request: Request, form: FormData) -> tuple[str, str]:
    """HTTP Basic (RFC 6749 §2.3.1, form-urlencoded inside) or client_id/client_secret in the
    body; not both."""
    header = request.headers.get("authorization")
    in_body = form.get("client_id") is not None or form.get("client_secret") is not None
    if header is not None:
        if in_body:
            raise OAuthError("invalid_request", "Authenticate the client one way, not two.")
        scheme, _, encoded = header.partition(" ")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "Malformed Basic credentials.", 401) from exc
        client_id, sep, secret = decoded.partition(":")
        if scheme.lower() != "basic" or not sep:
            raise OAuthError("invalid_client", "Use HTTP Basic client authentication.", 401)
        return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if not isinstance(form_id, str) or not isinstance(form_secret, str):
        raise OAuthError("invalid_client", "Client authentication is required.", 401)
    return form_id, form_secret


def _token_response(issued: service.IssuedTokens) -> Response:
    body = TokenResponse(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        refresh_expires_in=issued.refresh_expires_in,
    )
    return Response(body.model_dump_json(), media_type="application/json", headers=NO_STORE)


async def _refresh(
    request: Request, session: DbSession, tokens: TokenKeys, settings: Settings, form: FormData
) -> Response:
    refresh_token = form.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise OAuthError("invalid_request", "refresh_token is required.")
    subject, issued = await service.refresh_token_grant(
        session,
        tokens,
        settings,
        refresh_token=refresh_token,
    )
    request.state.audit_object_id = subject
    return _token_response(issued)


@routes.post(
    "/v1/auth/token",
    summary="Get an access token (OAuth 2.0 client credentials)",
    description="RFC 6749 §4.4: form-encoded `grant_type=client_credentials`, the client "
    "authenticated by HTTP Basic or `client_id`/`client_secret` in the body. Also takes "
    "`grant_type=refresh_token`. Answers and errors follow RFC 6749, so stock OAuth clients work.",
    response_model=TokenResponse,
    responses=OAUTH_ERRORS,
    openapi_extra={
        **encryption("off"),
        "requestBody": {
            "content": {
                _FORM_TYPE: {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"enum": ["client_credentials", "refresh_token"]},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                            "refresh_token": {"type": "string"},
                        },
                    }
                }
            }
        },
    },
)
async def token(
    request: Request, session: DbSession, tokens: TokenKeysDep, settings: SettingsDep
) -> Response:
    form = await _oauth_form(request)
    grant_type = form.get("grant_type")
    if grant_type == "refresh_token":
        return await _refresh(request, session, tokens, settings, form)
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "Use client_credentials or refresh_token.")
    client_id, secret = _client_authentication(request, form)
    request.state.audit_object_id = client_id
    credential, issued = await service.client_credentials_grant(
        session,
        tokens,
        settings,
        client_id=client_id,
        secret=secret,
    )
    request.state.principal = service.partner_principal(credential)
    return _token_response(issued)


@routes.post(
    "/v1/auth/refresh",
    summary="Rotate a refresh token",
    description="Form-encoded `grant_type=refresh_token&refresh_token=…`. The token is spent and "
    "a new pair returned. Presenting a spent token again revokes its whole family (it leaked).",
    response_model=TokenResponse,
    responses=OAUTH_ERRORS,
    openapi_extra=encryption("off"),
)
async def refresh(
    request: Request, session: DbSession, tokens: TokenKeysDep, settings: SettingsDep
) -> Response:
    form = await _oauth_form(request)
    if form.get("grant_type") != "refresh_token":
        raise OAuthError("unsupported_grant_type", "Only refresh_token is accepted here.")
    return await _refresh(request, session, tokens, settings, form)


@routes.get(
    "/.well-known/jwks.json",
    summary="Public keys that verify our access tokens",
    openapi_extra=encryption("off"),
)
async def jwks(tokens: TokenKeysDep) -> dict[str, object]:
    return await tokens.jwks()


# -- credentials ---------------------------------------------------------------------------------

CredentialId = Annotated[str, Path(description="A credential id (`crd_…`).")]


@routes.post(
    "/v1/credentials",
    summary="Create a credential (OAuth client or JWS secret)",
    status_code=status.HTTP_201_CREATED,
)
async def create_credential(
    body: CredentialCreate, principal: Partner, session: DbSession, keyring: KeyringDep
) -> One[CredentialCreated]:
    credential, secret = await service.create_credential(
        session,
        keyring,
        program_id=principal.tenant_id,
        type=body.type,
        name=body.name,
    )
    await session.refresh(credential)
    field = "client_secret" if credential.type == "client_credentials" else "secret"
    return One(data=_credential_out(credential, CredentialCreated, **{field: secret}))


@routes.get(
    "/v1/credentials",
    summary="List credentials",
)
async def list_credentials(
    principal: Partner, session: DbSession, page: Pagination
) -> Many[CredentialOut]:
    repository = CredentialRepository(session, principal.tenant_id)
    credentials, meta = await repository.page(repository.readable(), page)
    return Many(data=[_credential_out(c, CredentialOut) for c in credentials], meta=meta)


@routes.delete(
    "/v1/credentials/{credential_id}",
    summary="Revoke a credential",
    description="It stops working at once, with every token issued from it.",
    responses=error_responses("NOT_FOUND"),
)
async def revoke_credential(
    credential_id: CredentialId, principal: Partner, session: DbSession
) -> One[CredentialOut]:
    repository = CredentialRepository(session, principal.tenant_id)
    credential = await repository.get_or_404(credential_id, for_update=True)
    revoked = await service.revoke_credential(session, credential)
    return One(data=_credential_out(revoked, CredentialOut))


# -- cardholder sessions -------------------------------------------------------------------------


@routes.post(
    "/v1/users/{user_id}/sessions",
    summary="Start a cardholder session",
    description="For the cardholder's app: an access token (10 minutes by default) that reaches "
    "only `/v1/me/...` and only this user's objects, and a refresh token for "
    "`POST /v1/auth/refresh`.",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("NOT_FOUND"),
)
async def create_session(
    user_id: Annotated[str, Path(description="A user id (`usr_…`).")],
    body: SessionOptions,
    principal: Partner,
    session: DbSession,
    tokens: TokenKeysDep,
    settings: SettingsDep,
) -> One[SessionCreated]:
    user = await UserRepository(session, principal.tenant_id).get_or_404(user_id)
    cardholder_session, issued = await service.create_session(
        session,
        tokens,
        settings,
        user=user,
        device_id=body.device_id,
        strong_auth=body.strong_auth,
    )
    return One(
        data=SessionCreated(
            session_id=cardholder_session.id,
            user_id=user.id,
            access_token=issued.access_token,
            expires_in=issued.expires_in,
            refresh_token=issued.refresh_token,
            refresh_expires_in=issued.refresh_expires_in,
        )
    )


@routes.delete(
    "/v1/me/session",
    summary="End the current cardholder session",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def end_session(principal: Cardholder, session: DbSession) -> Response:
    assert principal.session_id is not None
    await service.revoke_session(session, principal.session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@routes.get(
    "/v1/me",
    summary="The cardholder's own profile and KYC status",
)
async def me(principal: Cardholder, session: DbSession) -> One[UserOut]:
    user = await UserRepository(session, principal.tenant_id).get_or_404(principal.user_id)
    return One(data=UserOut.of(user))
