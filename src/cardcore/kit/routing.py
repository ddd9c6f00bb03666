"""The route class every cardcore router uses: where the per-request conventions are applied.

- Every POST gets the `Idempotency-Key` guard (and the header in its OpenAPI docs); a retry gets
  the stored answer without the handler running.
- Every route has a JWE mode (`x-encryption`: required, optional or off, default per router):
  an encrypted body is decrypted before the handler reads it, and a 2xx answer is encrypted to
  the caller's key when asked for (see kit/encryption.py).
- Every mutating call leaves an audit row; on success its idempotency record is stored too. Both
  are flushed into the request's transaction before the session dependency commits it.
"""

import inspect
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.params import Depends
from fastapi.routing import APIRoute
from starlette.responses import Response

from cardcore.kit import audit
from cardcore.kit.encryption import (
    ENCRYPT_RESPONSE_HEADER,
    ENCRYPTED_REQUEST_HEADER,
    MODE_EXTENSION,
    PUBLIC_KEY_HEADER,
    EncryptionMode,
    EncryptionRequest,
    decrypt_body,
    encrypt_for,
    negotiate,
)
from cardcore.kit.idempotency import (
    REPLAYED_HEADER,
    IdempotencyGuard,
    IdempotentReplay,
    store_response,
)

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


class CardcoreRoute(APIRoute):
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
        if methods and "POST" in {m.upper() for m in methods}:
            dependencies.append(IdempotencyGuard)
        if self.encryption is not EncryptionMode.OFF:
            dependencies.append(Depends(_document_encryption_headers))
            text = description or inspect.cleandoc(endpoint.__doc__ or "")
            description = f"{text}\n\n{_MODE_NOTES[self.encryption]}".strip()
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
        mutating = bool(self.methods & audit.MUTATING_METHODS)
        mode = self.encryption

        async def handle(request: Request) -> Response:
            outcome = "success"
            try:
                has_body = bool(await request.body())
                encryption = negotiate(mode, request.headers, has_body=has_body)
                if encryption is not None and encryption.decrypt_body:
                    keys = request.app.state.encryption_keys
                    # The handler (and the idempotency fingerprint) see the plaintext.
                    request._body = await decrypt_body(await request.body(), keys)
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
                    async with request.app.state.sessionmaker() as session:
                        await audit.record_failure(session, request, exc)
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


def encryption(mode: EncryptionMode | str) -> dict[str, Any]:
    """`openapi_extra=` for a route whose JWE mode differs from its router's."""
    return {MODE_EXTENSION: EncryptionMode(mode).value}
