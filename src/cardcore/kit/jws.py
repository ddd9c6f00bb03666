"""Detached HS512 JWS request signatures, for partners that sign every request.

The caller signs every request: the protected header names the credential (`auth_id`) and what
the request is (`uri`, `method`, `params`: path, method and raw query string), the payload is the
raw body (the empty string for a body-less request), and the header `X-JWS-Signature` carries
`<protected>..<signature>` (compact JWS with the payload cut out). We rebuild it from the request
we actually received, verify the HMAC in constant time, and require the header to describe that
request exactly, so a signature cannot be moved to another path, method or query.

Each signed request carries a unique `request_id` inside what is signed, so a captured request
cannot be sent again: in the JSON body (the form signing partners send; cardcore takes it out
before the route reads the body) or as a `request_id` parameter of the protected header (the only
place a body-less or non-JSON request has). An unsigned `X-Request-Id` never counts.
"""

import base64
import json
import re
import warnings
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

from cardcore.kit.logging import contains_card_number

ALGORITHM = "HS512"
HEADER = "X-JWS-Signature"
MAX_SIGNATURE_LENGTH = 8192
# Stored as given and compared exactly; printable ASCII keeps NULs and look-alikes out.
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_ABSENT: Any = object()

_REGISTRY = JWSRegistry(
    header_registry={
        "uri": HeaderParameter("The request path", "str", True),
        "auth_id": HeaderParameter("The credential's id", "str", True),
        "method": HeaderParameter("The HTTP method", "str", True),
        "params": HeaderParameter("The raw query string", "str", True),
        "request_id": HeaderParameter("The request's unique id, when not in the body", "str"),
    },
    algorithms=[ALGORITHM],
)
# joserfc's default cap on the encoded protected header (512 bytes) is less than a long query
# string in `params` needs; the whole header value is capped at MAX_SIGNATURE_LENGTH instead.
_REGISTRY.max_header_length = MAX_SIGNATURE_LENGTH


class InvalidSignature(Exception):
    pass


class InvalidRequestId(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def auth_id_of(signature: str) -> str:
    """The credential a signature claims to come from, read before it is verified."""
    parts = signature.split(".")
    if len(signature) > MAX_SIGNATURE_LENGTH or len(parts) != 3 or parts[1] != "":
        raise InvalidSignature("X-JWS-Signature must be <protected>..<signature>")
    try:
        head = parts[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError as exc:
        raise InvalidSignature("the protected header is not base64url JSON") from exc
    auth_id = header.get("auth_id") if isinstance(header, dict) else None
    if not isinstance(auth_id, str) or not auth_id:
        raise InvalidSignature("the protected header has no auth_id")
    return auth_id


def verify_request_signature(
    signature: str, *, secret: str, method: str, path: str, query: str, body: bytes
) -> dict[str, Any]:
    """The verified protected header, or InvalidSignature."""
    auth_id_of(signature)
    try:
        with warnings.catch_warnings():
            # joserfc warns about short HMAC keys; partners' secrets from us are 256 bits, and
            # refusing a partner's own older secret here would not make it longer.
            warnings.simplefilter("ignore")
            verified = jws.deserialize_compact(
                signature,
                OctKey.import_key(secret),
                algorithms=[ALGORITHM],
                payload=body,
                registry=_REGISTRY,
            )
    except JoseError as exc:
        raise InvalidSignature(f"signature check failed: {exc.error}") from exc
    header = verified.headers()
    expected = {"uri": path, "method": method.upper(), "params": query}
    for name, value in expected.items():
        if header.get(name) != value:
            raise InvalidSignature(f"the signed {name} does not match the request")
    return header


def _json_object(body: bytes) -> dict[str, Any] | None:
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _body_request_id(body: bytes) -> Any:
    """The body's `request_id` member (any JSON value), or _ABSENT."""
    parsed = _json_object(body)
    return _ABSENT if parsed is None else parsed.get("request_id", _ABSENT)


def without_request_id(body: bytes) -> bytes | None:
    """The body with its `request_id` member taken out, or None when it has none.

    A signed body carries `request_id` for the signature's sake only; the route's schema, the
    idempotency fingerprint and the handler see the body without it. Re-encoding is safe: the
    route parses the body with the same `json.loads`, so it reads exactly what it would have.
    """
    parsed = _json_object(body)
    if parsed is None or "request_id" not in parsed:
        return None
    del parsed["request_id"]
    return json.dumps(parsed).encode()


def request_id_of(header: dict[str, Any], body: bytes) -> str:
    """The unique id a verified request signed, from its protected header or its body.

    Raises InvalidRequestId when there is none, when the two disagree, or when it is not an id
    we may store (a card number is refused, as it would otherwise be kept in clear)."""
    in_header = header.get("request_id", _ABSENT)
    in_body = _body_request_id(body)
    if in_header is not _ABSENT and in_body is not _ABSENT and in_header != in_body:
        raise InvalidRequestId(
            "MISMATCH", "The request_id in the signed header and in the body differ."
        )
    request_id = in_header if in_header is not _ABSENT else in_body
    if request_id is _ABSENT:
        raise InvalidRequestId(
            "MISSING",
            "A signed request needs a unique request_id inside what it signs: in the JSON body, "
            "or as a request_id parameter of the protected header.",
        )
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise InvalidRequestId(
            "INVALID", "request_id must be 1-128 printable ASCII characters, without spaces."
        )
    if contains_card_number(request_id):
        raise InvalidRequestId("CARD_NUMBER", "request_id must not contain a card number.")
    return request_id
