"""The audit trail: one row for every mutating call, whatever its outcome.

A successful call's row is written in the request's own transaction, so it exists exactly when the
change does. A failed call's row is written after the rollback, in a transaction of its own, so a
refused attempt is on record even though it changed nothing. Routes do not call this module; the
route class and the session dependency do (see kit/routing.py and kit/session.py).
"""

import json

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.responses import Response

from cardcore.kit import database_errors
from cardcore.kit.context import current_request_id
from cardcore.kit.errors import CardcoreError, OAuthError
from cardcore.kit.inputs import scrub
from cardcore.kit.logging import get_logger
from cardcore.kit.principals import ANONYMOUS, Principal
from cardcore.models import AuditLog

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

log = get_logger(__name__)


def should_record(request: Request) -> bool:
    return request.method in MUTATING_METHODS and not getattr(request.state, "audited", False)


def _object_id(request: Request, response_body: bytes | None) -> str | None:
    # A route may name the object itself, e.g. the client a failed token request claimed to be.
    named = getattr(request.state, "audit_object_id", None)
    if named:
        return scrub(str(named)[:64])
    for name, value in request.path_params.items():
        if name.endswith("_id"):
            return scrub(str(value)[:64])
    if response_body:
        try:
            data = json.loads(response_body).get("data")
        except (ValueError, AttributeError):
            return None
        if isinstance(data, dict) and isinstance(found := data.get("id"), str):
            return found[:64]
    return None


def _action(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "name", None) or "unrouted"


def _row(
    request: Request,
    *,
    outcome: str,
    status_code: int,
    error_code: str | None,
    response_body: bytes | None = None,
) -> AuditLog:
    principal: Principal = getattr(request.state, "principal", ANONYMOUS)
    return AuditLog(
        program_id=principal.program_id,
        actor_type=principal.kind.value,
        actor_id=principal.actor_id,
        channel=principal.channel,
        action=_action(request),
        method=request.method,
        # Paths and claimed ids are the caller's text: a NUL in them must not cost the row.
        path=scrub(request.url.path[:2000]),
        object_id=_object_id(request, response_body),
        request_id=current_request_id(),
        outcome=outcome,
        status_code=status_code,
        error_code=error_code,
    )


async def record_success(
    session: AsyncSession, request: Request, response: Response, *, outcome: str = "success"
) -> None:
    """`outcome` is "replayed" for the stored answer to an Idempotency-Key retry."""
    if not should_record(request):
        return
    body = bytes(response.body) if hasattr(response, "body") else None
    session.add(
        _row(
            request,
            outcome=outcome,
            status_code=response.status_code,
            error_code=None,
            response_body=body,
        )
    )
    request.state.audited = True
    await session.flush()


def describe_failure(exc: Exception) -> tuple[str, int, str]:
    """(outcome, HTTP status, error code) for an exception on its way to the error handlers."""
    if isinstance(exc, CardcoreError):
        return "failure", exc.status, exc.code
    if isinstance(exc, OAuthError):
        return "failure", exc.status, "OAUTH_" + exc.error.upper()
    if isinstance(exc, RequestValidationError):
        return "failure", 422, "VALIDATION_ERROR"
    if isinstance(exc, HTTPException):
        return "failure", exc.status_code, "HTTP_" + str(exc.status_code)
    refused = database_errors.client_error(exc)
    if refused is not None:
        return "failure", refused.status, refused.code
    return "error", 500, "INTERNAL_ERROR"


async def record_failure(session: AsyncSession, request: Request, exc: Exception) -> None:
    """Write the failure row in its own transaction; the caller has rolled back already."""
    if not should_record(request):
        return
    outcome, status_code, error_code = describe_failure(exc)
    request.state.audited = True
    try:
        session.add(_row(request, outcome=outcome, status_code=status_code, error_code=error_code))
        await session.commit()
    except Exception:
        # The original error is what the caller must see; a failing audit write (the database
        # being down, say) is logged, not allowed to replace it.
        await session.rollback()
        log.exception("audit_write_failed", action=_action(request))
