"""JWE payload encryption of requests and responses: card data and personal data encrypted end to
end on top of TLS, for partners whose compliance asks for it.

A caller that wants it sends its RSA public key in `Public-Key` and either
`Encrypted-Request: true` (the body is `{"payload": "<compact JWE>"}` encrypted to our key, and the
answer comes back encrypted) or `Encrypt-Response: true` (only the answer is encrypted). We accept
`alg` RSA-OAEP-256 or RSA-OAEP with `enc` A256GCM, and encrypt answers with RSA-OAEP-256 + A256GCM
to the caller's key as `{"payload": "<compact JWE>"}`. Only 2xx answers with a body are encrypted;
204 and every error stay plain JSON, so a caller can always read why it failed.

Each route declares a mode (`required`, `optional`, `off`) in its OpenAPI `x-encryption`; the
route class (kit/routing.py) applies it, so no handler ever sees ciphertext or sends plaintext
where encryption was asked for. A route whose body only sometimes carries a secret (issuing a
card, with or without a PIN) names those fields in `x-encryption-required-for`: a plain body with
any of them set is refused as if the route were `required`, before the handler runs.
"""

import base64
import binascii
import json
import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from starlette.datastructures import Headers

from cardcore.kit.errors import CardcoreError, FieldError, validation_error
from cardcore.kit.server_keys import KeySpec, ServerKeys

ENCRYPTION_KEYS: KeySpec = {"purpose": "jwe", "algorithm": "RSA-OAEP-256", "key_size": 3072}
ACCEPTED_KEY_ALGORITHMS = ("RSA-OAEP-256", "RSA-OAEP")
CONTENT_ENCRYPTION = "A256GCM"
RESPONSE_KEY_ALGORITHM = "RSA-OAEP-256"
# A compact JWE of the largest request we take, base64-expanded, with room to spare. Checked
# before anything is parsed.
MAX_PAYLOAD_BYTES = 1_048_576
MAX_PUBLIC_KEY_CHARS = 16_384
MIN_CALLER_KEY_BITS = 2048

PUBLIC_KEY_HEADER = "Public-Key"
ENCRYPTED_REQUEST_HEADER = "Encrypted-Request"
ENCRYPT_RESPONSE_HEADER = "Encrypt-Response"
MODE_EXTENSION = "x-encryption"
REQUIRED_FOR_EXTENSION = "x-encryption-required-for"


class EncryptionMode(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class EncryptionRequest:
    decrypt_body: bool
    caller_key: RSAKey


def _flag(headers: Headers, name: str) -> bool:
    value = headers.get(name)
    if value is None:
        return False
    if value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise validation_error(name, "INVALID_FLAG", f"{name} must be true or false.")


def negotiate(
    mode: EncryptionMode, headers: Headers, *, has_body: bool
) -> EncryptionRequest | None:
    """What this request asked for, held against the route's mode. None: plain JSON."""
    if mode is EncryptionMode.OFF:
        return None
    encrypted_request = _flag(headers, ENCRYPTED_REQUEST_HEADER)
    encrypt_response = _flag(headers, ENCRYPT_RESPONSE_HEADER) or encrypted_request
    # Required: a body must travel encrypted; a body-less call needs only its answer encrypted.
    plain = (has_body and not encrypted_request) or not encrypt_response
    if mode is EncryptionMode.REQUIRED and plain:
        raise CardcoreError("ENCRYPTION_REQUIRED")
    if not encrypt_response:
        return None
    caller_key = parse_public_key(headers.get(PUBLIC_KEY_HEADER))
    return EncryptionRequest(decrypt_body=encrypted_request and has_body, caller_key=caller_key)


def refuse_clear_secrets(body: bytes, fields: tuple[str, ...]) -> None:
    """A plain body that sets any of `fields` (top-level JSON keys) is refused. A body that is
    not a JSON object is left to the handler, whose validation answers it."""
    try:
        document = json.loads(body)
    except ValueError:
        return
    if not isinstance(document, dict):
        return
    for name in fields:
        if document.get(name) is not None:
            raise CardcoreError(
                "ENCRYPTION_REQUIRED",
                f"A body with `{name}` must travel encrypted: send Public-Key and "
                "Encrypted-Request: true with the body as a JWE.",
                errors=[
                    FieldError(
                        field=name,
                        code="ENCRYPTION_REQUIRED",
                        message=f"`{name}` is accepted only in an encrypted body.",
                    )
                ],
            )


def parse_public_key(value: str | None) -> RSAKey:
    """The caller's RSA public key from `Public-Key`: base64 of a PEM or DER key, or a JWK (as
    JSON, or base64 of JSON)."""
    if not value:
        raise CardcoreError("INVALID_PUBLIC_KEY", "Send your RSA public key in Public-Key.")
    if len(value) > MAX_PUBLIC_KEY_CHARS:
        raise CardcoreError("INVALID_PUBLIC_KEY", "Public-Key is too long.")
    try:
        raw = value.strip()
        if not raw.startswith("{"):
            raw_bytes = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=False)
            raw = raw_bytes.decode("latin-1").strip()
            material: bytes | dict[str, Any] = json.loads(raw) if raw.startswith("{") else raw_bytes
        else:
            material = json.loads(raw)
        with warnings.catch_warnings():
            # joserfc warns about keys under 2048 bits; we refuse them just below, with a
            # clear error instead.
            warnings.simplefilter("ignore")
            key = RSAKey.import_key(material)
    except (JoseError, ValueError, TypeError, binascii.Error) as exc:
        raise CardcoreError(
            "INVALID_PUBLIC_KEY", "Public-Key is not an RSA public key (PEM, DER or JWK)."
        ) from exc
    if key.is_private:
        # Never accept a private key: the caller just leaked it, and we must not hold it.
        raise CardcoreError(
            "INVALID_PUBLIC_KEY", "Public-Key holds a private key; send only the public part."
        )
    if key.raw_value.key_size < MIN_CALLER_KEY_BITS:
        raise CardcoreError(
            "INVALID_PUBLIC_KEY", f"The key must have at least {MIN_CALLER_KEY_BITS} bits."
        )
    return RSAKey.import_key(key.as_dict(private=False))


def _payload(body: bytes) -> str:
    if len(body) > MAX_PAYLOAD_BYTES:
        raise CardcoreError("INVALID_PAYLOAD", "The encrypted payload is too large.")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise CardcoreError("INVALID_PAYLOAD", 'The body must be {"payload": "<JWE>"}.') from exc
    payload = document.get("payload") if isinstance(document, dict) else None
    if not isinstance(payload, str) or set(document) != {"payload"}:
        raise CardcoreError("INVALID_PAYLOAD", 'The body must be {"payload": "<JWE>"}.')
    return payload


def _protected_header(payload: str) -> dict[str, object]:
    parts = payload.split(".")
    if len(parts) != 5:
        raise CardcoreError("INVALID_PAYLOAD", "payload is not a compact JWE (five parts).")
    try:
        head = parts[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError as exc:
        raise CardcoreError("INVALID_PAYLOAD", "The JWE header is not base64url JSON.") from exc
    if not isinstance(header, dict):
        raise CardcoreError("INVALID_PAYLOAD", "The JWE header is not a JSON object.")
    if header.get("alg") not in ACCEPTED_KEY_ALGORITHMS:
        raise CardcoreError("INVALID_PAYLOAD", "alg must be RSA-OAEP-256 or RSA-OAEP.")
    if header.get("enc") != CONTENT_ENCRYPTION:
        raise CardcoreError("INVALID_PAYLOAD", "enc must be A256GCM.")
    if "zip" in header:
        # Compressing before encrypting leaks the plaintext's shape; and a tiny payload can
        # inflate without bound.
        raise CardcoreError("INVALID_PAYLOAD", "Compressed (zip) payloads are not accepted.")
    return header


async def decrypt_body(body: bytes, keys: ServerKeys) -> bytes:
    payload = _payload(body)
    header = _protected_header(payload)
    kid = header.get("kid")
    if isinstance(kid, str):
        key = await keys.find(kid)
        candidates = [key] if key is not None else []
    else:
        candidates = await keys.usable()
    algorithms = [*ACCEPTED_KEY_ALGORITHMS, CONTENT_ENCRYPTION]
    for key in candidates:
        try:
            return jwe.decrypt_compact(payload, key, algorithms=algorithms).plaintext or b""
        except (JoseError, ValueError):
            continue
    raise CardcoreError("CANT_DECRYPT_PAYLOAD")


def encrypt_for(caller_key: RSAKey, plaintext: bytes) -> bytes:
    token = jwe.encrypt_compact(
        {"alg": RESPONSE_KEY_ALGORITHM, "enc": CONTENT_ENCRYPTION},
        plaintext,
        caller_key,
        algorithms=[RESPONSE_KEY_ALGORITHM, CONTENT_ENCRYPTION],
    )
    return json.dumps({"payload": token}).encode()
