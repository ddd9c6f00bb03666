"""JWE requests and responses, as a partner would send them — with our library and another."""

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from httpx import AsyncClient
from joserfc import jwe
from joserfc.jwk import RSAKey
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.encryption import ENCRYPTION_KEYS
from cardcore.kit.routing import router
from cardcore.kit.server_keys import rotate_server_keys
from cardcore.models import ServerKey
from tests.factories import Partner, make_user
from tests.kit.jose import decrypt_answer, encrypt_to, public_key_header, server_key


@pytest.fixture(scope="module")
def caller_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def encrypted_headers(partner: Partner, caller: rsa.RSAPrivateKey) -> dict[str, str]:
    return {
        **partner.headers,
        "Public-Key": public_key_header(caller),
        "Encrypted-Request": "true",
        "Content-Type": "application/json",
    }


async def test_round_trip_with_our_library(
    client: AsyncClient, partner: Partner, caller_key: rsa.RSAPrivateKey
) -> None:
    server = await server_key(client)
    assert "BEGIN PUBLIC KEY" in server["pem"]
    response = await client.post(
        "/v1/api-keys",
        content=encrypt_to(server, {"name": "encrypted"}),
        headers=encrypted_headers(partner, caller_key),
    )
    assert response.status_code == 201, response.text
    assert "ck_" not in response.text, "the secret must not travel in clear"
    answer = decrypt_answer(caller_key, response.json())
    assert answer["data"]["name"] == "encrypted"
    assert answer["data"]["secret"].startswith("ck_")


async def test_encrypt_response_only_for_a_get(
    client: AsyncClient, partner: Partner, caller_key: rsa.RSAPrivateKey
) -> None:
    response = await client.get(
        "/v1/program",
        headers={
            **partner.headers,
            "Public-Key": public_key_header(caller_key),
            "Encrypt-Response": "true",
        },
    )
    assert response.status_code == 200
    assert decrypt_answer(caller_key, response.json())["data"]["id"] == partner.program_id


async def test_interoperates_with_jwcrypto(client: AsyncClient, partner: Partner) -> None:
    """The client side is jwcrypto end to end: its own keys, its own JWE, its own parsing."""
    caller = jwcrypto_jwk.JWK.generate(kty="RSA", size=2048)
    server = jwcrypto_jwk.JWK(**(await server_key(client))["jwk"])
    for alg in ("RSA-OAEP-256", "RSA-OAEP"):
        request_jwe = jwcrypto_jwe.JWE(
            json.dumps({"name": f"via jwcrypto {alg}"}).encode(),
            json.dumps({"alg": alg, "enc": "A256GCM"}),
        )
        request_jwe.add_recipient(server)
        response = await client.post(
            "/v1/api-keys",
            content=json.dumps({"payload": request_jwe.serialize(compact=True)}),
            headers={
                **partner.headers,
                # A JWK, as JSON, is the third form Public-Key takes.
                "Public-Key": caller.export_public(),
                "Encrypted-Request": "true",
                "Content-Type": "application/json",
            },
        )
        assert response.status_code == 201, response.text
        answer_jwe = jwcrypto_jwe.JWE()
        answer_jwe.deserialize(response.json()["payload"], key=caller)
        answer = json.loads(answer_jwe.payload)
        assert answer["data"]["name"] == f"via jwcrypto {alg}"


async def test_public_key_as_base64_der(
    client: AsyncClient, partner: Partner, caller_key: rsa.RSAPrivateKey
) -> None:
    der = caller_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    response = await client.get(
        "/v1/program",
        headers={
            **partner.headers,
            "Public-Key": base64.b64encode(der).decode(),
            "Encrypt-Response": "true",
        },
    )
    assert decrypt_answer(caller_key, response.json())["data"]["id"] == partner.program_id


@pytest.fixture
def strict_app(app: FastAPI) -> FastAPI:
    """A route that requires encryption, as the card issues' reveal/PIN/CVV routes will."""
    strict = router(encryption="required")

    @strict.post("/v1/test/secret")
    async def secret_post(body: dict[str, Any]) -> dict[str, Any]:
        return {"data": body}

    @strict.get("/v1/test/secret")
    async def secret_get() -> dict[str, Any]:
        return {"data": {"pan": "4111111111111111"}}

    app.include_router(strict)
    return app


async def test_required_routes_refuse_plaintext(
    strict_app: FastAPI, client: AsyncClient, caller_key: rsa.RSAPrivateKey
) -> None:
    for response in (
        await client.post("/v1/test/secret", json={"pan": "4111111111111111"}),
        await client.get("/v1/test/secret"),
        # Only the answer encrypted is not enough when there is a body.
        await client.post(
            "/v1/test/secret",
            json={"a": 1},
            headers={"Public-Key": public_key_header(caller_key), "Encrypt-Response": "true"},
        ),
    ):
        assert response.status_code == 400
        assert response.json()["code"] == "ENCRYPTION_REQUIRED"
    ok = await client.get(
        "/v1/test/secret",
        headers={"Public-Key": public_key_header(caller_key), "Encrypt-Response": "true"},
    )
    assert ok.status_code == 200
    assert "4111" not in ok.text
    assert decrypt_answer(caller_key, ok.json()) == {"data": {"pan": "4111111111111111"}}


async def test_the_docs_say_which_routes_encrypt(strict_app: FastAPI, client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    strict = spec["paths"]["/v1/test/secret"]["post"]
    assert strict["x-encryption"] == "required"
    assert "Encryption: required" in strict["description"]
    assert spec["paths"]["/v1/program"]["get"]["x-encryption"] == "optional"
    assert spec["paths"]["/v1/auth/token"]["post"]["x-encryption"] == "off"
    headers = {p["name"] for p in spec["paths"]["/v1/program"]["get"]["parameters"]}
    assert {"Public-Key", "Encrypted-Request", "Encrypt-Response"} <= headers


def _token_with_header(server: dict[str, Any], header: dict[str, Any]) -> bytes:
    key = RSAKey.import_key(server["jwk"])
    token = jwe.encrypt_compact(
        {"alg": "RSA-OAEP-256", "enc": "A256GCM"},
        b'{"name": "x"}',
        key,
        algorithms=["RSA-OAEP-256", "A256GCM"],
    )
    parts = token.split(".")
    parts[0] = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
    return json.dumps({"payload": ".".join(parts)}).encode()


async def test_each_error_code(
    client: AsyncClient, partner: Partner, caller_key: rsa.RSAPrivateKey
) -> None:
    server = await server_key(client)
    headers = encrypted_headers(partner, caller_key)

    async def post(content: bytes, extra: dict[str, str] | None = None) -> tuple[int, str]:
        response = await client.post(
            "/v1/api-keys", content=content, headers={**headers, **(extra or {})}
        )
        body = response.json()
        assert "payload" not in body, "errors are never encrypted"
        return response.status_code, body["code"]

    good = encrypt_to(server, {"name": "x"})
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point
    private_pem = base64.b64encode(
        caller_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    ).decode()
    for bad_key in (
        "",
        "not-base64-!",
        base64.b64encode(b"nonsense").decode(),
        public_key_header(small),
        private_pem,
    ):
        assert await post(good, {"Public-Key": bad_key}) == (400, "INVALID_PUBLIC_KEY"), bad_key

    assert await post(b"not json") == (400, "INVALID_PAYLOAD")
    assert await post(b'{"data": "x"}') == (400, "INVALID_PAYLOAD")
    assert await post(b'{"payload": "a.b.c.d"}') == (400, "INVALID_PAYLOAD")
    # Over the request body limit (CARDCORE_MAX_JSON_BODY_BYTES), refused before decryption.
    assert await post(b'{"payload": "' + b"A" * 1_100_000 + b'"}') == (413, "PAYLOAD_TOO_LARGE")
    for header in (
        {"alg": "RSA1_5", "enc": "A256GCM"},
        {"alg": "RSA-OAEP-256", "enc": "A128GCM"},
        {"alg": "RSA-OAEP-256", "enc": "A256GCM", "zip": "DEF"},
        {"alg": "dir", "enc": "A256GCM"},
    ):
        assert await post(_token_with_header(server, header)) == (400, "INVALID_PAYLOAD"), header

    stranger = RSAKey.generate_key(2048)
    foreign = jwe.encrypt_compact(
        {"alg": "RSA-OAEP-256", "enc": "A256GCM"},
        b"{}",
        stranger,
        algorithms=["RSA-OAEP-256", "A256GCM"],
    )
    assert await post(json.dumps({"payload": foreign}).encode()) == (400, "CANT_DECRYPT_PAYLOAD")
    # Right key, but the ciphertext was changed in transit.
    parts = json.loads(good)["payload"].split(".")
    parts[3] = parts[3][:-4] + ("AAAA" if parts[3][-4:] != "AAAA" else "BBBB")
    tampered = json.dumps({"payload": ".".join(parts)}).encode()
    assert await post(tampered) == (400, "CANT_DECRYPT_PAYLOAD")

    # A well-encrypted request that fails validation answers in clear.
    assert await post(encrypt_to(server, {"name": ""})) == (422, "VALIDATION_ERROR")
    flag = await client.get("/v1/program", headers={**partner.headers, "Encrypt-Response": "yes"})
    assert flag.status_code == 422


async def test_rotation_keeps_the_old_key_for_the_grace_period(
    client: AsyncClient,
    app: FastAPI,
    partner: Partner,
    caller_key: rsa.RSAPrivateKey,
    session: AsyncSession,
) -> None:
    old = await server_key(client)
    await rotate_server_keys(session, app.state.keyring, **ENCRYPTION_KEYS)  # type: ignore[arg-type]
    await session.commit()
    app.state.encryption_keys.forget()
    new = await server_key(client)
    assert new["kid"] != old["kid"]
    headers = encrypted_headers(partner, caller_key)
    for server in (old, new):
        response = await client.post(
            "/v1/api-keys", content=encrypt_to(server, {"name": "r"}), headers=headers
        )
        assert response.status_code == 201, server["kid"]
    # Past the grace period the old key is gone.
    await session.execute(
        update(ServerKey)
        .where(ServerKey.kid == old["kid"])
        .values(retired_at=datetime.now(UTC) - timedelta(days=8))
    )
    await session.commit()
    app.state.encryption_keys.forget()
    response = await client.post(
        "/v1/api-keys", content=encrypt_to(old, {"name": "r"}), headers=headers
    )
    assert response.json()["code"] == "CANT_DECRYPT_PAYLOAD"


async def test_an_idempotent_replay_is_encrypted_again(
    client: AsyncClient, partner: Partner, caller_key: rsa.RSAPrivateKey
) -> None:
    server = await server_key(client)
    headers = {**encrypted_headers(partner, caller_key), "Idempotency-Key": "enc-1"}
    body = {"name": "once"}
    first = await client.post("/v1/api-keys", content=encrypt_to(server, body), headers=headers)
    # A retry re-encrypts its body (new random key), so the ciphertexts differ, the plaintext not.
    second = await client.post("/v1/api-keys", content=encrypt_to(server, body), headers=headers)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "ck_" not in second.text
    assert decrypt_answer(caller_key, first.json()) == decrypt_answer(caller_key, second.json())


async def test_a_204_answer_stays_plain(
    client: AsyncClient,
    app: FastAPI,
    partner: Partner,
    session: AsyncSession,
    caller_key: rsa.RSAPrivateKey,
) -> None:
    user_id = await make_user(app, partner)
    minted = await client.post(f"/v1/users/{user_id}/sessions", json={}, headers=partner.headers)
    token = minted.json()["data"]["access_token"]
    ended = await client.delete(
        "/v1/me/session",
        headers={
            "Authorization": f"Bearer {token}",
            "Public-Key": public_key_header(caller_key),
            "Encrypt-Response": "true",
        },
    )
    assert ended.status_code == 204
    assert ended.content == b""
