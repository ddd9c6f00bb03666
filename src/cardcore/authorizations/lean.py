"""The lean path of the card processor's hot path: `POST /v1/network/authorizations`, and the
clearings, reversals and incremental authorizations that follow them.

An authorization is what an issuer's system exists to answer, thousands of times a second, so
these messages' common case skips what every other route pays for and they need not: routing,
FastAPI's dependency tree (the credential check's own query, the idempotency guard, the audit
row) and the ORM. A message with one `X-API-Key` of a network key this process has seen before
and a JSON body that validates (pydantic-core, from the bytes) is handled by `service.authorize`
or `follow_ups.follow_up` in two round trips on its own pool (a read, then a write that records
the decision only if what it was made on is unchanged; each made together with those of the
other messages of its kind in flight, `store.Together`), the key checked afresh in the read,
and answered with the same model and serializer as the standard route, so a retransmission gets
the first answer byte for byte whichever way it went. The network message that stores the answer
is the audit record.

Anything else — the first message of a key in this process, an `Idempotency-Key`, JWE headers,
another credential, a body that does not validate, a key no longer good, and any failure — goes
on to the standard route, which answers it exactly as any route would: errors rendered and
audited; nothing of the lean attempt was written (or, had its write gone through, the standard
route finds its answer as a retransmission's). Both ways run the same service, so there is one
engine and one set of rules.
"""

import asyncio
import functools
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
from fastapi import Request
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.engine import URL
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardcore.authorizations import follow_ups, messages, service, store
from cardcore.authorizations.schemas import (
    AmountFollowUpIn,
    AuthorizationIn,
    AuthorizationOut,
    FollowUpIn,
)
from cardcore.cards.dependencies import card_services
from cardcore.config import Settings
from cardcore.kit import app_state
from cardcore.kit.crypto import sha256_digest
from cardcore.kit.principals import Principal, PrincipalKind

PATH = "/v1/network/authorizations"


@dataclass(frozen=True, slots=True)
class _Lane:
    """A route the lean path serves: its message, and what the access log and metrics name a
    lean request by (the route it stands in for)."""

    message: type[BaseModel]
    kind: str
    route: SimpleNamespace


def _lane(path: str, message: type[BaseModel], kind: str, name: str) -> tuple[str, _Lane]:
    return path, _Lane(message, kind, SimpleNamespace(path=path, name=name))


_LANES = dict(
    (
        _lane(PATH, AuthorizationIn, "authorization", "authorize"),
        _lane("/v1/network/clearings", FollowUpIn, "clearing", "clear"),
        _lane("/v1/network/reversals", FollowUpIn, "reversal", "reverse"),
        _lane("/v1/network/incremental-authorizations", AmountFollowUpIn, "increment", "increment"),
    )
)
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


def _remember(principal: Principal | None, digest: bytes) -> None:
    """After the standard route authenticated a network key: the next message may go lean."""
    if (
        principal is None
        or principal.kind is not PrincipalKind.NETWORK
        or principal.channel != "api_key"
        or principal.actor_id is None
    ):
        return
    if len(_KNOWN_KEYS) >= _MAX_KNOWN_KEYS:
        _KNOWN_KEYS.clear()
    _KNOWN_KEYS[digest] = (principal.actor_id, principal.tenant_id)


class AuthorizationLane:
    """The lean path, as the innermost middleware: a message it can serve never reaches the
    router (matching a path against every route cost a tenth of an authorization); everything
    else, and every message it cannot serve, goes on to the app, the body it read handed on
    unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = _LANES.get(scope["path"]) if scope["type"] == "http" else None
        if lane is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        secret = _api_key(request)
        digest = sha256_digest(secret) if secret is not None else None
        known = _KNOWN_KEYS.get(digest) if digest is not None else None
        if digest is None or known is None:
            await self._standard(scope, receive, send, digest)
            return
        body = await request.body()
        replay = _replaying(body, receive)
        answer = None
        if b"\\u" not in body:
            answer = await self._lean(lane, request, body, digest, known)
        if answer is None:
            await self._standard(scope, replay, send, None)
            return
        scope["route"] = lane.route
        await Response(answer, media_type=_JSON)(scope, replay, send)

    async def _lean(
        self, lane: _Lane, request: Request, body: bytes, digest: bytes, known: tuple[str, str]
    ) -> bytes | None:
        """The answer's bytes, or None for the standard route to answer (an escaped NUL or
        surrogate, which kit/inputs refuses, is its too)."""
        try:
            message: Any = lane.message.model_validate_json(body)
        except ValidationError:
            return None
        key_id, program_id = known
        request.state.principal = Principal(
            PrincipalKind.NETWORK, program_id=program_id, actor_id=key_id, channel="api_key"
        )
        touch_after = timedelta(seconds=app_state.settings(request).api_key_touch_interval_seconds)
        if lane.kind == "authorization":
            handle = functools.partial(
                service.authorize,
                services=card_services(request),
                program_id=program_id,
                request=message.to_authorization(program_id),
                key_id=key_id,
                touch_after=touch_after,
            )
        else:
            handle = functools.partial(
                follow_ups.follow_up,
                kind=lane.kind,
                program_id=program_id,
                transaction_id=message.authorization_id,
                network_key=message.network.key(program_id, lane.kind),
                amount=message.amount,
                key_id=key_id,
                touch_after=touch_after,
            )
        connections: Connections | None = getattr(request.app.state, "lean_connections", None)
        try:
            if connections is not None and getattr(message, "pin_block", None) is None:
                # Two round trips, each its own transaction (see service.authorize) and each
                # shared with the other messages of its kind then in flight (store.Pooled).
                answer = await handle(
                    store.NO_SESSION, connection=connections.pooled, unlocked=True
                )
            else:
                async with app_state.sessionmaker(request)() as session:
                    try:
                        answer = await handle(session)
                        await session.commit()
                    except BaseException:
                        await session.rollback()
                        raise
        except Exception as exc:
            # Nothing was committed. A key no longer good, a card not found, something only
            # the session can do, a database error: the standard route answers it, errors
            # rendered and audited as on every route, and this process forgets a key it refused.
            if isinstance(exc, messages.NetworkKeyRefused):
                _KNOWN_KEYS.pop(digest, None)
            return None
        return _ANSWER.dump_json(AuthorizationOut(**answer))

    async def _standard(
        self, scope: Scope, receive: Receive, send: Send, digest: bytes | None
    ) -> None:
        """The app answers; a network key it accepted is remembered for the lean path."""
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, sending)
        if digest is not None and status == 200:
            _remember(scope.get("state", {}).get("principal"), digest)


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


class Connections:
    """The lean path's own asyncpg pool, for an app on its own database engine: a message's
    statements without the session and pool machinery of SQLAlchemy (a fifth of an
    authorization's CPU). An app handed a sessionmaker (the tests' rolled-back world) has none,
    and the lean path runs in a session there, as the standard route does."""

    def __init__(self, url: URL, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self._creating = asyncio.Lock()
        # Through the attribute at each use, so the tests can watch what is sent.
        self.pooled = store.Pooled(lambda: self.connection())

    async def _start(self) -> asyncpg.Pool:
        async with self._creating:
            if self.pool is None:
                query = dict(self.url.query)
                host = query.pop("host", None)
                dsn = self.url.set(drivername="postgresql", query=query).render_as_string(
                    hide_password=False
                )
                server_settings = {"application_name": "cardcore"}
                if self.settings.db_statement_timeout_ms:
                    server_settings["statement_timeout"] = str(
                        self.settings.db_statement_timeout_ms
                    )
                where: dict[str, Any] = {"host": host} if host else {}
                self.pool = await asyncpg.create_pool(
                    dsn,
                    **where,
                    min_size=0,
                    max_size=self.settings.db_lean_pool_size or 2 * (os.cpu_count() or 2),
                    server_settings=server_settings,
                    init=_json_codecs,
                    reset=_nothing_to_reset,
                )
        return self.pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A pooled connection, each statement its own transaction."""
        pool = self.pool or await self._start()
        async with pool.acquire() as connection:
            yield connection

    async def close(self) -> None:
        await self.pooled.closed()
        if self.pool is not None:
            await self.pool.close()


async def _json_codecs(connection: Any) -> None:
    """JSON in as text, out as Python values: as SQLAlchemy's driver sets its connections up,
    so the authorization's statements work the same on either."""
    for name, prefix in (("json", b""), ("jsonb", b"\x01")):
        await connection.set_type_codec(
            name,
            encoder=functools.partial(_encode, prefix),
            decoder=functools.partial(_decode, len(prefix)),
            schema="pg_catalog",
            format="binary",
        )


def _encode(prefix: bytes, text: str) -> bytes:
    return prefix + text.encode()


def _decode(skip: int, data: bytes) -> Any:
    return json.loads(data[skip:].decode())


async def _nothing_to_reset(connection: Any) -> None:
    """The pool rolls back an open transaction itself; nothing else is ever set on these
    connections, so a release costs no round trip (asyncpg's default reset is one)."""
