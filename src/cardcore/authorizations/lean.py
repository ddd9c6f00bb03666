"""The lean route of `POST /v1/network/authorizations`: the card processor's hot path.

An authorization is what an issuer's system exists to answer, thousands of times a second, so
its common case skips what every other route pays for and this one needs not: FastAPI's
dependency tree (the credential check's own query, the idempotency guard, the audit row) and the
ORM. A message with one `X-API-Key` of a network key this process has seen before, a JSON body
that validates and no other option is read (pydantic-core, from the bytes), decided by
`service.authorize` in four round trips — the key is checked afresh inside its read — and
answered with the same model and serializer as the standard route, so a retransmission gets the
first answer byte for byte whichever route served it. The network message that stores the
answer is the audit record of an authorization; a failure is audited as on every route.

Anything else — the first message of a key in this process, an `Idempotency-Key`, JWE headers,
another credential, a body that does not validate, a key no longer good — goes the standard way
(`CardcoreRoute`), which answers it exactly as any route would, errors included. Both ways run
the same service, so there is one engine and one set of rules.
"""

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from fastapi import Request
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response

from cardcore.auth.principals import Principal, PrincipalKind
from cardcore.authorizations import service
from cardcore.authorizations.schemas import AuthorizationIn, AuthorizationOut
from cardcore.kit import audit
from cardcore.kit.crypto import sha256_digest
from cardcore.kit.routing import CardcoreRoute

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


def _remember(request: Request, secret: str) -> None:
    """After the standard route authenticated a network key: the next message may go lean."""
    principal = getattr(request.state, "principal", None)
    if (
        principal is None
        or principal.kind is not PrincipalKind.NETWORK
        or principal.channel != "api_key"
    ):
        return
    if len(_KNOWN_KEYS) >= _MAX_KNOWN_KEYS:
        _KNOWN_KEYS.clear()
    _KNOWN_KEYS[sha256_digest(secret)] = (principal.actor_id, principal.tenant_id)


class AuthorizationRoute(CardcoreRoute):
    """`CardcoreRoute` with the lean path in front of it (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()

        async def handle(request: Request) -> Response:
            secret = _api_key(request)
            known = _KNOWN_KEYS.get(sha256_digest(secret)) if secret is not None else None
            if secret is None or known is None:
                response = await standard(request)
                if secret is not None and response.status_code == 200:
                    _remember(request, secret)
                return response
            body = await request.body()
            # An escaped NUL or surrogate would need the standard route's refusal (kit/inputs).
            if b"\\u" in body:
                return await standard(request)
            try:
                message = AuthorizationIn.model_validate_json(body)
            except ValidationError:
                return await standard(request)
            key_id, program_id = known
            request.state.principal = Principal(
                PrincipalKind.NETWORK, program_id=program_id, actor_id=key_id, channel="api_key"
            )
            settings = request.app.state.settings
            async with request.app.state.sessionmaker() as session:
                try:
                    answer = await service.authorize(
                        session,
                        request.app.state.card_services,
                        program_id=program_id,
                        request=message.to_authorization(program_id),
                        key_id=key_id,
                        touch_after=timedelta(seconds=settings.api_key_touch_interval_seconds),
                    )
                    await session.commit()
                except service.NetworkKeyRefused:
                    await session.rollback()
                    _KNOWN_KEYS.pop(sha256_digest(secret), None)
                    return await standard(request)
                except Exception as exc:
                    await session.rollback()
                    await audit.record_failure(session, request, exc)
                    raise
            return Response(_ANSWER.dump_json(AuthorizationOut(**answer)), media_type=_JSON)

        return handle
