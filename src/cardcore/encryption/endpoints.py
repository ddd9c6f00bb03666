"""Our JWE public key, for partners to encrypt requests to."""

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, Field

from cardcore.kit.app_state import EncryptionKeysDep
from cardcore.kit.encryption import ACCEPTED_KEY_ALGORITHMS, CONTENT_ENCRYPTION
from cardcore.kit.envelope import One
from cardcore.kit.routing import router

routes = router(tags=["encryption"])


class PublicKeyOut(BaseModel):
    kid: str = Field(description="Put it in your JWE header so we pick the right key.")
    alg: list[str] = Field(description="Key encryption algorithms we accept.")
    enc: str = Field(description="The content encryption we accept and answer with.")
    jwk: dict[str, Any]
    pem: str = Field(description="The same key as SubjectPublicKeyInfo PEM.")


@routes.get(
    "/v1/encryption/public-key",
    summary="Our current JWE public key",
    description="Encrypt request payloads to this key (RSA-OAEP-256 or RSA-OAEP, with "
    "A256GCM). It changes when we rotate; after a rotation the previous key keeps working for "
    "a grace period. No credentials needed: it is public.",
)
async def public_key(keys: EncryptionKeysDep) -> One[PublicKeyOut]:
    key = await keys.current()
    private = key.raw_value
    # Server keys are loaded from their private PEM, with a kid (kit/server_keys.py).
    assert isinstance(private, rsa.RSAPrivateKey)
    assert key.kid is not None
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return One(
        data=PublicKeyOut(
            kid=key.kid,
            alg=list(ACCEPTED_KEY_ALGORITHMS),
            enc=CONTENT_ENCRYPTION,
            jwk=key.as_dict(private=False),
            pem=pem.decode(),
        )
    )
