"""One place that turns every failure into the error shape of DESIGN.md."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from cardcore.kit.errors import CardcoreError, FieldError, OAuthError
from cardcore.kit.logging import get_logger
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


def _field_errors(errors: Any) -> list[FieldError]:
    out = []
    for item in errors:
        loc = [str(part) for part in item.get("loc", ())]
        if loc and loc[0] in _LOCATIONS:
            loc = loc[1:]
        out.append(
            FieldError(
                field=".".join(loc) or "body",
                code=str(item.get("type", "invalid")).upper(),
                # Pydantic's message only: never the input, which may hold a card number.
                message=str(item.get("msg", "Invalid value.")),
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
    return error_response(request, CardcoreError(code, message, headers=exc.headers))


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


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled_error", exc_info=exc, path=request.url.path)
    return error_response(request, CardcoreError("INTERNAL_ERROR"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CardcoreError, _cardcore_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(OAuthError, _oauth_error)
    app.add_exception_handler(Exception, _unexpected_error)
