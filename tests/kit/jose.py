"""A partner's side of JOSE, for every test that talks to cardcore as one does: JWE requests
encrypted to our public key and encrypted answers opened (kit/encryption.py), and detached JWS
request signatures (kit/jws.py), made with jwcrypto, a library cardcore does not use."""

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from httpx import AsyncClient, Response
from joserfc import jwe
from joserfc.jwk import RSAKey
from jwcrypto import jwk
from jwcrypto import jws as jwcrypto_jws
from jwcrypto.common import json_encode

# The caller's key pair: answers to requests that send its public half come back encrypted to it.
CALLER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_key_header(key: rsa.RSAPrivateKey) -> str:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(pem).decode()


async def server_key(client: AsyncClient) -> dict[str, Any]:
    response = await client.get("/v1/encryption/public-key")
    assert response.status_code == 200
    return response.json()["data"]  # type: ignore[no-any-return]


def encrypt_to(server: dict[str, Any], body: dict[str, Any], alg: str = "RSA-OAEP-256") -> bytes:
    key = RSAKey.import_key(server["jwk"])
    token = jwe.encrypt_compact(
        {"alg": alg, "enc": "A256GCM", "kid": server["kid"]},
        json.dumps(body).encode(),
        key,
        algorithms=[alg, "A256GCM"],
    )
    return json.dumps({"payload": token}).encode()


def decrypt_answer(caller: rsa.RSAPrivateKey, body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"payload"}
    pem = caller.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    result = jwe.decrypt_compact(
        body["payload"], RSAKey.import_key(pem), algorithms=["RSA-OAEP-256", "A256GCM"]
    )
    assert result.protected == {"alg": "RSA-OAEP-256", "enc": "A256GCM"}
    return json.loads(result.plaintext or b"")  # type: ignore[no-any-return]


async def encrypted_post(
    client: AsyncClient,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    method: str = "POST",
) -> Response:
    """`body` as a JWE to our current key, the answer asked encrypted to CALLER_KEY."""
    server = await server_key(client)
    return await client.request(
        method,
        path,
        content=encrypt_to(server, body),
        headers={
            **headers,
            "Public-Key": public_key_header(CALLER_KEY),
            "Encrypted-Request": "true",
            "Content-Type": "application/json",
        },
    )


def opened(response: Response) -> dict[str, Any]:
    """A successful answer to CALLER_KEY, decrypted."""
    assert response.status_code in (200, 201), response.text
    return decrypt_answer(CALLER_KEY, response.json())


def sign(
    credential: dict[str, str],
    method: str,
    uri: str,
    body: bytes = b"",
    params: str = "",
    secret: str | None = None,
    **extra_header: str,
) -> str:
    """What a partner does: a compact HS512 JWS over the body, with the payload cut out."""
    key = jwk.JWK(kty="oct", k=jwk.base64url_encode((secret or credential["secret"]).encode()))
    header = {
        "uri": uri,
        "auth_id": credential["auth_id"],
        "method": method,
        "params": params,
        "alg": "HS512",
        **extra_header,
    }
    token = jwcrypto_jws.JWS(body)
    token.add_signature(key, None, json_encode(header))
    token.detach_payload()
    compact: str = token.serialize(compact=True)
    assert compact.count(".") == 2
    assert ".." in compact
    return compact
