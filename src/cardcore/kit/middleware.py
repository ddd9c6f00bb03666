"""The outer layers of every request: its id, its access log line, its metrics, the answer to a
failure nothing else handled, and the bound on its body."""

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardcore.kit.context import request_id_var
from cardcore.kit.errors import CardcoreError
from cardcore.kit.logging import contains_card_number, get_logger
from cardcore.kit.metrics import HTTP_LATENCY, HTTP_REQUESTS
from cardcore.models import ids

REQUEST_ID_HEADER = "X-Request-Id"
# What we accept from a caller as its request id (a UUID, an RRN, ...): anything else is replaced,
# so a header cannot smuggle newlines or megabytes into our logs.
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

access_log = get_logger("cardcore.access")


def _caller_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            # The id is echoed and stored (audit_log, events) as given, so one that holds a card
            # number is replaced rather than kept, by the same test the log mask uses.
            if _ACCEPTABLE_REQUEST_ID.match(candidate) and not contains_card_number(candidate):
                return candidate
            return None
    return None


ErrorRenderer = Callable[[Request, Exception], Awaitable[Response]]


class RequestContextMiddleware:
    """Also answers the failures no exception handler took (a bug, a lost database) with the
    500 of the error shape, and does not re-raise them. Starlette's outermost middleware would
    send the same 500 and then re-raise for the server to log, and uvicorn answers an exception
    raised after a response by closing the connection: every client of a keep-alive pool would
    lose its connection to one failed request. `on_error` (kit/handlers.py) logs it instead."""

    def __init__(self, app: ASGIApp, on_error: ErrorRenderer | None = None) -> None:
        self.app = app
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _caller_request_id(scope) or ids.new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        log_tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        responding = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, responding
            if message["type"] == "http.response.start":
                status, responding = message["status"], True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            try:
                await self.app(scope, receive, send_with_request_id)
            except Exception as exc:
                # Half a response cannot be mended: then the connection must go, as it does.
                if self.on_error is None or responding:
                    raise
                response = await self.on_error(Request(scope, receive), exc)
                await response(scope, receive, send_with_request_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_REQUESTS.labels(scope["method"], template, str(status)).inc()
            HTTP_LATENCY.labels(scope["method"], template).observe(elapsed)
            access_log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            request_id_var.reset(token)
            structlog.contextvars.reset_contextvars(**log_tokens)


class BodyTooLarge(CardcoreError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "PAYLOAD_TOO_LARGE", f"The request body is over this route's limit of {limit} bytes."
        )


class BodyLimitMiddleware:
    """Refuses a request body over its limit with 413 PAYLOAD_TOO_LARGE before reading it.

    Document uploads (multipart bodies to a route that takes a file) have `upload_limit`; every
    other body has `json_limit`. A declared `Content-Length` over both is refused at once, before
    routing; one over its route's limit when the route first asks for the body, nothing read. A
    body without one (chunked) is counted as it streams in and cut off at the limit, so no more
    than one chunk beyond it is ever held. The connection is then closed after the answer, so
    the client stops sending the rest.

    Starlette's own body limit answers in plain text; this one answers in the error shape, and
    tells an upload from everything else."""

    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    def limit(self, scope: Scope) -> int:
        """The route is known by the time anything reads the body (routing sets it)."""
        if getattr(scope.get("route"), "takes_files", False):
            content_type = Headers(scope=scope).get("content-type", "")
            if content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
                return self.upload_limit
        return self.json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > max(self.json_limit, self.upload_limit):
            await _refuse(scope, send, BodyTooLarge(max(self.json_limit, self.upload_limit)))
            return

        received = 0
        cut_off = started = False

        async def counted_receive() -> Message:
            nonlocal received, cut_off
            limit = self.limit(scope)
            if declared is not None and declared > limit:
                cut_off = True
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut_off = True
                    raise BodyTooLarge(limit)
            return message

        async def send_closing(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if cut_off:
                    # The rest of the body is still on its way; do not read it for a next request.
                    MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        try:
            await self.app(scope, counted_receive, send_closing)
        except BodyTooLarge as exc:
            # Normally the error handlers answer it; this is for a body read outside a route.
            if started:
                raise
            await _refuse(scope, send, exc)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _refuse(scope: Scope, send: Send, error: CardcoreError) -> None:
    state: dict[str, Any] = scope.get("state", {})
    response = JSONResponse(
        error.body(state.get("request_id")),
        status_code=error.status,
        headers={"Connection": "close"},
    )

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)
