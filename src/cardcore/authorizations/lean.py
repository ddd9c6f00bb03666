"""The lean path of `POST /v1/network/authorizations`: the card processor's hot path.

An authorization is what an issuer's system exists to answer, thousands of times a second, so
its common case skips what every other route pays for and this one needs not: routing, FastAPI's
dependency tree (the credential check's own query, the idempotency guard, the audit row) and the
ORM. A message with one `X-API-Key` of a network key this process has seen before and a JSON body
that validates (pydantic-core, from the bytes) is decided by `service.authorize` in four round
trips — the key is checked afresh inside its read — and answered with the same model and
serializer as the standard route, so a retransmission gets the first answer byte for byte
whichever way it went. The network message that stores the answer is the authorization's audit
record.

Anything else — the first message of a key in this process, an `Idempotency-Key`, JWE headers,
another credential, a body that does not validate, a key no longer good, and any failure — goes
on to the standard route, which answers it exactly as any route would: errors rendered and
audited, nothing of the lean attempt committed. Both ways run the same service, so there is one
engine and one set of rules.
"""

from datetime import timedelta
from types import SimpleNamespace

from fastapi import Request
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardcore.auth.principals import Principal, PrincipalKind
from cardcore.authorizations import service
from cardcore.authorizations.schemas import AuthorizationIn, AuthorizationOut
from cardcore.kit.crypto import sha256_digest

PATH = "/v1/network/authorizations"
# What the access log and metrics name a lean request by (the route it stands in for).
_ROUTE = SimpleNamespace(path=PATH, name="authorize")
# A request with any of these headers asks for something only the standard route does.
_STANDARD_ONLY = frozenset(
    {
        b"authorization",
        b"x-auth-token",
        b"x-jws-signature",
        b"idempotency-key",
        b"public-key",
        b"encrypted-request",
        b"encrypt-response",
    }
)
# What this process has seen of network keys: the SHA-256 of the secret, and the key's id and
# program. Neither ever changes for a key, so nothing here goes stale; whether the key is still
# good (not revoked, its program not suspended) is asked on every message, in the read.
_KNOWN_KEYS: dict[bytes, tuple[str, str]] = {}
_MAX_KNOWN_KEYS = 10_000
# The standard route's serializer for its answer model, so both routes send the same bytes.
_ANSWER = TypeAdapter(AuthorizationOut)
_JSON = "application/json"


def _api_key(request: Request) -> str | None:
    """The request's `X-API-Key` when it is its only credential and it asks for nothing the
    standard route alone does; else None."""
    key = None
    for name, value in request.scope["headers"]:
        if name == b"x-api-key":
            if key is not None:
                return None
            key = value.decode("latin-1")
        elif name in _STANDARD_ONLY or (
            name == b"content-type" and not value.lower().startswith(b"application/json")
        ):
            return None
    return key


def _remember(principal: Principal | None, secret: str) -> None:
    """After the standard route authenticated a network key: the next message may go lean."""
    if (
        principal is None
        or principal.kind is not PrincipalKind.NETWORK
        or principal.channel != "api_key"
    ):
        return
    if len(_KNOWN_KEYS) >= _MAX_KNOWN_KEYS:
        _KNOWN_KEYS.clear()
    _KNOWN_KEYS[sha256_digest(secret)] = (principal.actor_id, principal.tenant_id)


class AuthorizationLane:
    """The lean path, as the innermost middleware: a `POST /v1/network/authorizations` it can
    serve never reaches the router (matching a path against every route cost a tenth of an
    authorization); everything else, and every message it cannot serve, goes on to the app,
    the body it read handed on unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        secret = _api_key(request)
        known = _KNOWN_KEYS.get(sha256_digest(secret)) if secret is not None else None
        if secret is None or known is None:
            await self._standard(scope, receive, send, secret)
            return
        body = await request.body()
        replay = _replaying(body, receive)
        answer = await self._lean(request, body, secret, known) if b"\\u" not in body else None
        if answer is None:
            await self._standard(scope, replay, send, None)
            return
        scope["route"] = _ROUTE
        await Response(answer, media_type=_JSON)(scope, replay, send)

    async def _lean(
        self, request: Request, body: bytes, secret: str, known: tuple[str, str]
    ) -> bytes | None:
        """The answer's bytes, or None for the standard route to answer (an escaped NUL or
        surrogate, which kit/inputs refuses, is its too)."""
        try:
            message = AuthorizationIn.model_validate_json(body)
        except ValidationError:
            return None
        key_id, program_id = known
        request.state.principal = Principal(
            PrincipalKind.NETWORK, program_id=program_id, actor_id=key_id, channel="api_key"
        )
        app = request.app
        async with app.state.sessionmaker() as session:
            try:
                answer = await service.authorize(
                    session,
                    app.state.card_services,
                    program_id=program_id,
                    request=message.to_authorization(program_id),
                    key_id=key_id,
                    touch_after=timedelta(
                        seconds=app.state.settings.api_key_touch_interval_seconds
                    ),
                )
                await session.commit()
            except Exception as exc:
                # Nothing was committed. A key no longer good, a card not found, a database
                # error: the standard route answers it, errors rendered and audited as on
                # every route, and this process forgets a key it refused.
                await session.rollback()
                if isinstance(exc, service.NetworkKeyRefused):
                    _KNOWN_KEYS.pop(sha256_digest(secret), None)
                return None
        return _ANSWER.dump_json(AuthorizationOut(**answer))

    async def _standard(
        self, scope: Scope, receive: Receive, send: Send, secret: str | None
    ) -> None:
        """The app answers; a network key it accepted is remembered for the lean path."""
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, sending)
        if secret is not None and status == 200:
            _remember(scope.get("state", {}).get("principal"), secret)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app after the lane read the body: the body, then the real stream."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
