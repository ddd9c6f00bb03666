"""Detached HS512 JWS request signatures (seed 004).

The caller signs every request: the protected header names the credential (`auth_id`) and what
the request is (`uri`, `method`, `params`: path, method and raw query string), the payload is the
raw body (the empty string for a body-less request), and the header `X-JWS-Signature` carries
`<protected>..<signature>` (compact JWS with the payload cut out). We rebuild it from the request
we actually received, verify the HMAC in constant time, and require the header to describe that
request exactly, so a signature cannot be moved to another path, method or query.
"""

import base64
import json
import warnings
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

ALGORITHM = "HS512"
MAX_SIGNATURE_LENGTH = 8192

_REGISTRY = JWSRegistry(
    header_registry={
        "uri": HeaderParameter("The request path", "str", True),
        "auth_id": HeaderParameter("The credential's id", "str", True),
        "method": HeaderParameter("The HTTP method", "str", True),
        "params": HeaderParameter("The raw query string", "str", True),
    },
    algorithms=[ALGORITHM],
)


class InvalidSignature(Exception):
    pass


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
