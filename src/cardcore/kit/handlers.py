"""One place that turns every failure into the error shape of DESIGN.md."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from cardcore.kit import database_errors
from cardcore.kit.errors import CardcoreError, FieldError, OAuthError
from cardcore.kit.logging import get_logger, mask_pans
from cardcore.kit.middleware import REQUEST_ID_HEADER

log = get_logger(__name__)

_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_response(request: Request, error: CardcoreError) -> JSONResponse:
    request_id = _request_id(request)
    headers = dict(error.headers or {})
    if request_id:
        # Set here as well as by the middleware: a 500 is sent from outside the middleware.
        headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(error.body(request_id), status_code=error.status, headers=headers)


_GENERIC_MESSAGE = "This value is not valid."


def _echoes(value: Any, message: str) -> bool:
    """Whether `message` repeats the input `value` (a string of three or more characters, or a
    number of four or more digits)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        value = str(value)
        return len(value.lstrip("-")) >= 4 and value in message
    return isinstance(value, str) and len(value.strip()) >= 3 and value.strip() in message


def _field_errors(errors: Any) -> list[FieldError]:
    out = []
    for item in errors:
        loc = [str(part) for part in item.get("loc", ())]
        if loc and loc[0] in _LOCATIONS:
            loc = loc[1:]
        # Pydantic's message, never the input, which may be a card number: our validators do not
        # quote what they check, and this catches one that would (or a library's message).
        message = str(item.get("msg", _GENERIC_MESSAGE))
        if _echoes(item.get("input"), message):
            message = _GENERIC_MESSAGE
        out.append(
            FieldError(
                # A location can hold a caller's dict key.
                field=mask_pans(".".join(loc)) or "body",
                code=str(item.get("type", "invalid")).upper(),
                message=mask_pans(message),
            )
        )
    return out


async def _cardcore_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CardcoreError)
    return error_response(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    error = CardcoreError("VALIDATION_ERROR", errors=_field_errors(exc.errors()))
    return error_response(request, error)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "BAD_REQUEST" if exc.status_code < 500 else None)
    if code is None:
        return await _unexpected_error(request, exc)
    message = None if exc.status_code in (404, 405) else str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(request, CardcoreError(code, message, headers=headers))


async def _oauth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="cardcore"'
    request_id = _request_id(request)
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers=headers,
    )


async def _database_error(request: Request, exc: Exception) -> Response:
    refused = database_errors.client_error(exc)
    if refused is None:
        return await _unexpected_error(request, exc)
    # A schema should have refused this before the database did: worth an operator's look.
    log.warning("database_refused", path=request.url.path, **database_errors.describe(exc))
    return error_response(request, refused)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # The class and, for a database error, SQLSTATE and constraint; the traceback's messages
    # are withheld where they may quote a row (see kit/logging.py).
    fields = database_errors.describe(exc) if database_errors.is_database_error(exc) else {}
    fields.setdefault("error", type(exc).__name__)
    log.error("unhandled_error", exc_info=exc, path=request.url.path, **fields)
    return error_response(request, CardcoreError("INTERNAL_ERROR"))


async def render_unexpected_error(request: Request, exc: Exception) -> Response:
    """For the middleware that keeps a 500 from closing the connection (kit/middleware.py)."""
    if isinstance(exc, StatementError):
        return await _database_error(request, exc)
    return await _unexpected_error(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CardcoreError, _cardcore_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(OAuthError, _oauth_error)
    app.add_exception_handler(StatementError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
