"""The access tokens cardcore issues: RS256 JWTs under versioned, rotatable signing keys.

Only RS256 is accepted, named explicitly on every decode, so `alg: none`, HS256 and an HS256
token "signed" with our public key (the HS/RS confusion) are all refused before any key is used.
A token must also not live longer than its kind may now (`exp - iat` within the configured TTL
for its audience): lowering a TTL setting shortens the tokens already out, and a token minted
under a longer setting, or for a longer time than its kind allows, is refused.
The keys are server keys of purpose `jwt` (kit/server_keys.py); `cardcore keys rotate-jwt` adds
one, and the old ones verify until every token they could have signed has expired, so a rotation
logs nobody out.
"""

import base64
import json
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore.config import Settings
from cardcore.kit.crypto import Keyring
from cardcore.kit.server_keys import KeySpec, ServerKeys, rotate_server_keys

ISSUER = "cardcore"
ALGORITHM = "RS256"
SIGNING_KEYS: KeySpec = {"purpose": "jwt", "algorithm": ALGORITHM, "key_size": 2048}
# Tokens live at most this long (the TTL settings are capped to it), so a key retired longer
# ago than this has nothing left to verify.
MAX_TOKEN_LIFETIME = timedelta(hours=2)
_LEEWAY_SECONDS = 5


class Audience(StrEnum):
    PARTNER = "cardcore:partner"
    CARDHOLDER = "cardcore:cardholder"
    ADMIN = "cardcore:admin"


class InvalidToken(Exception):
    pass


def lifetimes(settings: Settings) -> dict[str, int]:
    """The longest lifetime (`exp - iat`, seconds) a token of each audience may have."""
    return {
        Audience.PARTNER.value: settings.access_token_ttl_seconds,
        Audience.CARDHOLDER.value: settings.session_ttl_seconds,
        Audience.ADMIN.value: settings.admin_token_ttl_seconds,
    }


class TokenKeys:
    def __init__(self, keyring: Keyring, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.keys = ServerKeys(keyring, sessionmaker, grace=MAX_TOKEN_LIFETIME, **SIGNING_KEYS)

    async def issue(
        self,
        *,
        audience: Audience,
        subject: str,
        program_id: str,
        ttl_seconds: int,
        extra: dict[str, Any] | None = None,
    ) -> str:
        if not 0 < ttl_seconds <= MAX_TOKEN_LIFETIME.total_seconds():
            raise ValueError(f"a token may live at most {MAX_TOKEN_LIFETIME}")
        key = await self.keys.current()
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": audience.value,
            "sub": subject,
            "prg": program_id,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
            **(extra or {}),
        }
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid}, claims, key, algorithms=[ALGORITHM])

    async def verify(self, token: str, *, max_lifetimes: Mapping[str, int]) -> dict[str, Any]:
        """The token's claims, or InvalidToken. `max_lifetimes` caps `exp - iat` per audience
        (see `lifetimes`); which audience the caller accepts is checked by its own branch."""
        kid = _kid_of(token)
        if kid is None:
            raise InvalidToken("token has no key id")
        key = await self.keys.find(kid)
        if key is None:
            raise InvalidToken("unknown signing key")
        try:
            decoded = jwt.decode(token, KeySet([key]), algorithms=[ALGORITHM])
            JWTClaimsRegistry(
                leeway=_LEEWAY_SECONDS,
                iss={"essential": True, "value": ISSUER},
                aud={"essential": True, "values": [a.value for a in Audience]},
                sub={"essential": True},
                exp={"essential": True},
                # Without it a token's lifetime cannot be told; joserfc refuses one in the future.
                iat={"essential": True},
                prg={"essential": True},
            ).validate(decoded.claims)
        except JoseError as exc:
            raise InvalidToken(exc.error) from exc
        except (ValueError, TypeError) as exc:
            raise InvalidToken("malformed token") from exc
        claims = decoded.claims
        audience = claims["aud"]
        limit = max_lifetimes.get(audience) if isinstance(audience, str) else None
        if limit is None or claims["exp"] - claims["iat"] > limit:
            raise InvalidToken("lifetime longer than allowed")
        return claims

    async def jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in await self.keys.usable()]}


def _kid_of(token: str) -> str | None:
    try:
        head = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, IndexError) as exc:
        raise InvalidToken("malformed token") from exc
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


async def rotate_signing_keys(session: AsyncSession, keyring: Keyring) -> str:
    return await rotate_server_keys(session, keyring, **SIGNING_KEYS)
