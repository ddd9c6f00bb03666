"""Resolving the caller once per request, and the guards routes declare."""

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from cardcore.auth.principals import ANONYMOUS, Principal, PrincipalKind
from cardcore.db import DbSession
from cardcore.kit.errors import Forbidden, Unauthenticated
from cardcore.programs import service as programs

api_key_header = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="A partner API key (`ck_live_…` / `ck_test_…`), from `cardcore bootstrap` or "
    "`POST /v1/api-keys`.",
    auto_error=False,
)


async def get_principal(
    request: Request,
    session: DbSession,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
) -> Principal:
    """Who is calling. A credential that is present but wrong is refused here, even on routes that
    would accept an anonymous caller: a typo in a key must not silently downgrade the caller."""
    principal = ANONYMOUS
    if api_key is not None:
        key = await programs.authenticate_api_key(
            session,
            api_key,
            touch_interval_seconds=request.app.state.settings.api_key_touch_interval_seconds,
        )
        if key is None:
            raise Unauthenticated("The API key is not valid, or has been revoked.")
        if key.program_status != "ACTIVE":
            raise Forbidden("This program is suspended.")
        principal = Principal(
            PrincipalKind.PARTNER, program_id=key.program_id, actor_id=key.id, channel="api_key"
        )
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def require_partner(principal: CurrentPrincipal) -> Principal:
    if principal.kind is PrincipalKind.ANONYMOUS:
        raise Unauthenticated()
    if principal.kind is not PrincipalKind.PARTNER:
        raise Forbidden("This route is for partner credentials.")
    return principal


Partner = Annotated[Principal, Security(require_partner)]
