"""The access tokens cardcore issues: RS256 JWTs under versioned, rotatable signing keys.

Only RS256 is accepted, named explicitly on every decode, so `alg: none`, HS256 and an HS256
token "signed" with our public key (the HS/RS confusion) are all refused before any key is used.
Keys live in the database (private halves encrypted under the master key), so every API process
signs and verifies with the same set; each process caches them and reloads when it meets a `kid`
it does not know, or once a minute. `cardcore keys rotate-jwt` adds a key and retires the old
ones, which keep verifying until every token they could have signed has expired.
"""

import asyncio
import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.crypto import Keyring
from cardcore.models import SigningKey

ISSUER = "cardcore"
ALGORITHM = "RS256"
# Tokens live at most this long, so a key retired longer ago than this has nothing left to verify.
MAX_TOKEN_LIFETIME = timedelta(hours=2)
_RELOAD_AFTER_SECONDS = 60.0
_UNKNOWN_KID_RELOAD_SECONDS = 5.0
_LEEWAY_SECONDS = 5


class Audience(StrEnum):
    PARTNER = "cardcore:partner"
    CARDHOLDER = "cardcore:cardholder"
    ADMIN = "cardcore:admin"


class InvalidToken(Exception):
    pass


@dataclass
class TokenKeys:
    """One process's view of the signing keys."""

    keyring: Keyring
    _public: dict[str, RSAKey] = field(default_factory=dict)
    _signing: RSAKey | None = None
    _loaded_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _load(self, session: AsyncSession) -> None:
        rows = (
            await session.scalars(
                select(SigningKey)
                .where(
                    or_(
                        SigningKey.retired_at.is_(None),
                        SigningKey.retired_at > func.now() - MAX_TOKEN_LIFETIME,
                    )
                )
                .order_by(SigningKey.created_at)
            )
        ).all()
        self._public = {row.kid: RSAKey.import_key(row.public_jwk) for row in rows}
        active = [row for row in rows if row.retired_at is None]
        self._signing = None
        if active:
            newest = active[-1]
            pem = self.keyring.decrypt(newest.private_key_ciphertext, f"signing_key:{newest.kid}")
            self._signing = RSAKey.import_key(pem, parameters={"kid": newest.kid})
        self._loaded_at = time.monotonic()

    async def _signing_key(self, session: AsyncSession) -> RSAKey:
        async with self._lock:
            if self._signing is None or time.monotonic() - self._loaded_at > _RELOAD_AFTER_SECONDS:
                await self._load(session)
            if self._signing is None:
                await create_signing_key(session, self.keyring, only_if_none=True)
                await self._load(session)
            assert self._signing is not None
            return self._signing

    async def issue(
        self,
        session: AsyncSession,
        *,
        audience: Audience,
        subject: str,
        program_id: str,
        ttl_seconds: int,
        extra: dict[str, Any] | None = None,
    ) -> str:
        key = await self._signing_key(session)
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

    async def verify(self, session: AsyncSession, token: str) -> dict[str, Any]:
        """The token's claims, or InvalidToken. Audience is checked by the caller's branch."""
        kid = _kid_of(token)
        if kid is None:
            raise InvalidToken("token has no key id")
        if kid not in self._public:
            async with self._lock:
                stale = time.monotonic() - self._loaded_at > _UNKNOWN_KID_RELOAD_SECONDS
                if kid not in self._public and stale:
                    await self._load(session)
        public = self._public.get(kid)
        if public is None:
            raise InvalidToken("unknown signing key")
        try:
            decoded = jwt.decode(token, KeySet([public]), algorithms=[ALGORITHM])
            JWTClaimsRegistry(
                leeway=_LEEWAY_SECONDS,
                iss={"essential": True, "value": ISSUER},
                aud={"essential": True, "values": [a.value for a in Audience]},
                sub={"essential": True},
                exp={"essential": True},
                prg={"essential": True},
            ).validate(decoded.claims)
        except JoseError as exc:
            raise InvalidToken(exc.error) from exc
        except (ValueError, TypeError) as exc:
            raise InvalidToken("malformed token") from exc
        return decoded.claims

    async def jwks(self, session: AsyncSession) -> dict[str, Any]:
        await self._signing_key(session)
        return {"keys": [key.as_dict(private=False) for key in self._public.values()]}


def _kid_of(token: str) -> str | None:
    try:
        head = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, IndexError) as exc:
        raise InvalidToken("malformed token") from exc
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


async def create_signing_key(
    session: AsyncSession, keyring: Keyring, *, only_if_none: bool = False
) -> str | None:
    """Add a signing key; with `only_if_none`, only when no active key exists (first start).
    A transaction-scoped advisory lock keeps two processes from both creating the first key."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('signing_keys', 0))"))
    if only_if_none:
        existing = await session.scalar(
            select(SigningKey.kid).where(SigningKey.retired_at.is_(None)).limit(1)
        )
        if existing is not None:
            return None
    kid = f"sk_{uuid.uuid4().hex[:16]}"
    private = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"})
    session.add(
        SigningKey(
            kid=kid,
            algorithm=ALGORITHM,
            private_key_ciphertext=keyring.encrypt(
                private.as_pem(private=True), f"signing_key:{kid}"
            ),
            public_jwk=private.as_dict(private=False),
        )
    )
    await session.flush()
    return kid


async def rotate_signing_keys(session: AsyncSession, keyring: Keyring) -> str:
    await session.execute(
        update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=func.now())
    )
    kid = await create_signing_key(session, keyring)
    assert kid is not None
    return kid
