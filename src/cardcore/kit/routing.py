"""The route class every cardcore router uses: where the per-request conventions are applied.

- Every POST gets the `Idempotency-Key` guard (and the header in its OpenAPI docs); a retry gets
  the stored answer without the handler running.
- Every route has a JWE mode (`x-encryption`: required, optional or off, default per router):
  an encrypted body is decrypted before the handler reads it, and a 2xx answer is encrypted to
  the caller's key when asked for (see kit/encryption.py). An optional route may name body fields
  that make encryption required (`x-encryption-required-for`, e.g. a PIN).
- A JWS-signed request's body is kept as signed for the signature check, and the route reads
  it without the signed `request_id` (see kit/jws.py).
- Every mutating call leaves an audit row; on success its idempotency record is stored too. Both
  are flushed into the request's transaction before the session dependency commits it.
- Text PostgreSQL cannot store (NUL, unpaired surrogates) is refused with 422 before the handler
  runs, in every parameter and body field the route reads (see kit/inputs.py).
"""

import inspect
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends, File
from fastapi.routing import APIRoute
from starlette.responses import Response

from cardcore.kit import app_state, audit, jws
from cardcore.kit.encryption import (
    ENCRYPT_RESPONSE_HEADER,
    ENCRYPTED_REQUEST_HEADER,
    MODE_EXTENSION,
    PUBLIC_KEY_HEADER,
    REQUIRED_FOR_EXTENSION,
    EncryptionMode,
    EncryptionRequest,
    decrypt_body,
    encrypt_for,
    negotiate,
    refuse_clear_secrets,
)
from cardcore.kit.errors import error_responses
from cardcore.kit.idempotency import (
    REPLAYED_HEADER,
    IdempotencyGuard,
    IdempotentReplay,
    store_response,
)
from cardcore.kit.inputs import refuse_unstorable_text

_MODE_NOTES = {
    EncryptionMode.REQUIRED: "**Encryption: required.** Send `Public-Key` and "
    "`Encrypted-Request: true` (or, without a body, `Encrypt-Response: true`); the answer is a "
    "JWE. Plain requests get `400 ENCRYPTION_REQUIRED`.",
    EncryptionMode.OPTIONAL: "**Encryption: optional.** Send `Public-Key` with "
    "`Encrypted-Request: true` or `Encrypt-Response: true` to use JWE.",
}


# What `negotiate` accepts as a flag, so the document does not promise any string.
_FLAG = r"^\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])\s*$"


def _document_encryption_headers(
    public_key: Annotated[
        str | None,
        Header(
            alias=PUBLIC_KEY_HEADER,
            description="Your RSA public key (base64 of PEM or DER, or a JWK) for JWE answers.",
        ),
    ] = None,
    encrypted_request: Annotated[
        str | None,
        Header(
            alias=ENCRYPTED_REQUEST_HEADER,
            pattern=_FLAG,
            description='`true`: the body is {"payload": "<JWE>"} and the answer is encrypted.',
        ),
    ] = None,
    encrypt_response: Annotated[
        str | None,
        Header(
            alias=ENCRYPT_RESPONSE_HEADER,
            pattern=_FLAG,
            description="`true`: encrypt only the answer.",
        ),
    ] = None,
) -> None:
    """Declares the JWE headers in the OpenAPI docs; the route class acts on them."""


def dependants(dependant: Dependant) -> Iterator[Dependant]:
    """A route's dependant and all its dependencies', depth first."""
    yield dependant
    for sub in dependant.dependencies:
        yield from dependants(sub)


class CardcoreRoute(APIRoute):
    # Whether the route takes a file: its body has the upload limit (kit/middleware.py).
    takes_files = False

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: set[str] | list[str] | None = None,
        dependencies: Sequence[Depends] | None = None,
        openapi_extra: dict[str, Any] | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> None:
        dependencies = list(dependencies or [])
        openapi_extra = dict(openapi_extra or {})
        self.encryption = EncryptionMode(openapi_extra.setdefault(MODE_EXTENSION, "off"))
        self.required_for = tuple(openapi_extra.get(REQUIRED_FOR_EXTENSION, ()))
        if self.required_for and self.encryption is not EncryptionMode.OPTIONAL:
            raise ValueError(f"{path}: fields that require encryption need an optional route")
        if methods and "POST" in {m.upper() for m in methods}:
            dependencies.append(IdempotencyGuard)
        if methods and {m.upper() for m in methods} & audit.MUTATING_METHODS:
            # Any body can be too large (kit/middleware.py): say so where bodies are sent.
            kwargs["responses"] = {
                **error_responses("PAYLOAD_TOO_LARGE"),
                **(kwargs.get("responses") or {}),
            }
        if self.encryption is not EncryptionMode.OFF:
            dependencies.append(Depends(_document_encryption_headers))
            text = description or inspect.cleandoc(endpoint.__doc__ or "")
            note = _MODE_NOTES[self.encryption]
            if self.required_for:
                names = ", ".join(f"`{name}`" for name in self.required_for)
                note += (
                    f" **A body with {names} requires it**: sent plain, it gets "
                    "`400 ENCRYPTION_REQUIRED` and nothing is done."
                )
            description = f"{text}\n\n{note}".strip()
        super().__init__(
            path,
            endpoint,
            methods=methods,
            dependencies=dependencies,
            openapi_extra=openapi_extra,
            description=description,
            **kwargs,
        )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        mutating = bool((self.methods or set()) & audit.MUTATING_METHODS)
        mode = self.encryption
        required_for = self.required_for
        # What the route reads, dependencies included: the only inputs that can reach the
        # database, so the only ones whose text is checked. (Here, not in __init__: the parent's
        # __init__ builds the handler.)
        tree = list(dependants(self.dependant))
        query = tuple({f.alias for d in tree for f in d.query_params})
        headers = tuple({f.alias.replace("_", "-").lower() for d in tree for f in d.header_params})
        checks_body = self.body_field is not None
        self.takes_files = any(isinstance(f.field_info, File) for d in tree for f in d.body_params)

        async def handle(request: Request) -> Response:
            outcome = "success"
            try:
                has_body = bool(await request.body())
                encryption = negotiate(mode, request.headers, has_body=has_body)
                if encryption is not None and encryption.decrypt_body:
                    keys = app_state.encryption_keys(request)
                    # The handler (and the idempotency fingerprint) see the plaintext.
                    request._body = await decrypt_body(await request.body(), keys)
                elif required_for and has_body:
                    refuse_clear_secrets(await request.body(), required_for)
                await refuse_unstorable_text(
                    request, query=query, headers=headers, has_body=checks_body
                )
                if jws.HEADER in request.headers:
                    await _set_aside_signed_body(request)
                try:
                    response = await handler(request)
                except IdempotentReplay as replay:
                    outcome = "replayed"
                    response = Response(
                        replay.body,
                        status_code=replay.status_code,
                        media_type="application/json",
                        headers={REPLAYED_HEADER: "true"},
                    )
            except Exception as exc:
                # Failed before the session dependency existed (an unreadable body, say): the
                # dependency cannot record it, so record it here in a transaction of its own.
                if mutating and getattr(request.state, "session", None) is None:
                    async with app_state.sessionmaker(request)() as own:
                        await audit.record_failure(own, request, exc)
                raise
            session = getattr(request.state, "session", None)
            if mutating and session is not None:
                if outcome == "success":
                    await store_response(session, request, response)
                await audit.record_success(session, request, response, outcome=outcome)
            if encryption is not None:
                response = _encrypted(response, encryption)
            return response

        return handle


async def _set_aside_signed_body(request: Request) -> None:
    """Keep the bytes a JWS signed for its verification, and give the route the body without
    the signed `request_id`, which no request schema takes (they all forbid unknown fields)."""
    signed = await request.body()
    request.state.jws_signed_body = signed
    stripped = jws.without_request_id(signed)
    if stripped is not None:
        request._body = stripped


def _encrypted(response: Response, encryption: EncryptionRequest) -> Response:
    """Only a 2xx answer with a body is encrypted; errors and 204 stay readable."""
    if not 200 <= response.status_code < 300 or response.status_code == 204 or not response.body:
        return response
    headers = {
        name: value
        for name, value in response.headers.items()
        if name.lower() not in ("content-length", "content-type")
    }
    return Response(
        encrypt_for(encryption.caller_key, bytes(response.body)),
        status_code=response.status_code,
        media_type="application/json",
        headers=headers,
    )


class CardcoreRouter(APIRouter):
    """An APIRouter of CardcoreRoutes whose routes default to one JWE mode."""

    def __init__(self, *, encryption: EncryptionMode | str = "off", **kwargs: Any) -> None:
        super().__init__(route_class=CardcoreRoute, **kwargs)
        self.encryption = EncryptionMode(encryption)

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        extra = dict(kwargs.get("openapi_extra") or {})
        extra.setdefault(MODE_EXTENSION, self.encryption.value)
        kwargs["openapi_extra"] = extra
        super().add_api_route(path, endpoint, **kwargs)


def router(**kwargs: Any) -> CardcoreRouter:
    return CardcoreRouter(**kwargs)


def encryption(mode: EncryptionMode | str, *, required_for: Sequence[str] = ()) -> dict[str, Any]:
    """`openapi_extra=` for a route whose JWE mode differs from its router's; `required_for`
    names body fields that make an optional route's encryption required."""
    extra: dict[str, Any] = {MODE_EXTENSION: EncryptionMode(mode).value}
    if required_for:
        extra[REQUIRED_FOR_EXTENSION] = list(required_for)
    return extra
