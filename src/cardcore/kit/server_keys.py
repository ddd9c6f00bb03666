"""cardcore's own RSA key pairs: the one that signs access tokens, the one partners encrypt to.

Keys live in the database, private halves encrypted under the master key, so every API process
uses the same set. They are read and created in transactions of their own, committed at once, so
a key a process uses always exists for the others, whatever becomes of the request that needed
it. Each process caches them and reloads when it meets a `kid` it does not know (at most every
few seconds) or once a minute. Rotation adds a key and retires the old ones, which keep working
for a grace period (tokens they signed still verify; payloads encrypted to them still decrypt)
and are then dropped from use.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypedDict

from joserfc.jwk import RSAKey
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore.kit.crypto import Keyring
from cardcore.models import ServerKey

_RELOAD_AFTER_SECONDS = 60.0
_UNKNOWN_KID_RELOAD_SECONDS = 5.0


class KeySpec(TypedDict):
    """What keys of one purpose are: the arguments a purpose's keys are made and kept with."""

    purpose: str
    algorithm: str
    key_size: int


@dataclass
class ServerKeys:
    """One process's cache of the keys of one purpose."""

    keyring: Keyring
    sessionmaker: async_sessionmaker[AsyncSession]
    purpose: str
    algorithm: str
    key_size: int
    grace: timedelta
    _keys: dict[str, RSAKey] = field(default_factory=dict)
    _current: RSAKey | None = None
    _loaded_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _load(self) -> None:
        async with self.sessionmaker() as session:
            await self._load_from(session)

    async def _load_from(self, session: AsyncSession) -> None:
        rows = (
            await session.scalars(
                select(ServerKey)
                .where(
                    ServerKey.purpose == self.purpose,
                    or_(
                        ServerKey.retired_at.is_(None),
                        ServerKey.retired_at > func.now() - self.grace,
                    ),
                )
                .order_by(ServerKey.created_at)
            )
        ).all()
        keys = {}
        for row in rows:
            pem = self.keyring.decrypt(row.private_key_ciphertext, f"server_key:{row.kid}")
            keys[row.kid] = RSAKey.import_key(
                pem, parameters={"kid": row.kid, "alg": row.algorithm}
            )
        active = [row.kid for row in rows if row.retired_at is None]
        self._keys = keys
        self._current = keys[active[-1]] if active else None
        self._loaded_at = time.monotonic()

    async def current(self) -> RSAKey:
        """The newest key (created on first use when there is none)."""
        async with self._lock:
            if self._current is None or time.monotonic() - self._loaded_at > _RELOAD_AFTER_SECONDS:
                await self._load()
            if self._current is None:
                async with self.sessionmaker() as session, session.begin():
                    await create_server_key(
                        session,
                        self.keyring,
                        purpose=self.purpose,
                        algorithm=self.algorithm,
                        key_size=self.key_size,
                        only_if_none=True,
                    )
                await self._load()
            assert self._current is not None
            return self._current

    async def find(self, kid: str) -> RSAKey | None:
        """The key `kid`, if it is still in use. The cache is refreshed when it is a minute old
        (so a key past its grace period stops working everywhere) and, at most every few
        seconds, when `kid` is unknown (so a key rotated in by another process is found)."""
        age = time.monotonic() - self._loaded_at
        if age > _RELOAD_AFTER_SECONDS or (
            kid not in self._keys and age > _UNKNOWN_KID_RELOAD_SECONDS
        ):
            async with self._lock:
                await self._load()
        return self._keys.get(kid)

    async def usable(self) -> list[RSAKey]:
        """Every key still in use, newest first."""
        await self.current()
        return list(reversed(self._keys.values()))

    def forget(self) -> None:
        """Drop the cache, so the next use reloads (after a rotation in this process)."""
        self._loaded_at = 0.0


async def create_server_key(
    session: AsyncSession,
    keyring: Keyring,
    *,
    purpose: str,
    algorithm: str,
    key_size: int,
    only_if_none: bool = False,
) -> str | None:
    """Add a key; with `only_if_none`, only when no active key of the purpose exists. A
    transaction-scoped advisory lock keeps two processes from both creating the first one."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
        {"name": f"server_keys:{purpose}"},
    )
    if only_if_none:
        existing = await session.scalar(
            select(ServerKey.kid)
            .where(ServerKey.purpose == purpose, ServerKey.retired_at.is_(None))
            .limit(1)
        )
        if existing is not None:
            return None
    kid = f"{purpose}_{uuid.uuid4().hex[:16]}"
    private = RSAKey.generate_key(key_size, parameters={"kid": kid, "alg": algorithm})
    session.add(
        ServerKey(
            kid=kid,
            purpose=purpose,
            algorithm=algorithm,
            private_key_ciphertext=keyring.encrypt(
                private.as_pem(private=True), f"server_key:{kid}"
            ),
            public_jwk=private.as_dict(private=False),
        )
    )
    await session.flush()
    return kid


async def rotate_server_keys(
    session: AsyncSession, keyring: Keyring, *, purpose: str, algorithm: str, key_size: int
) -> str:
    await session.execute(
        update(ServerKey)
        .where(ServerKey.purpose == purpose, ServerKey.retired_at.is_(None))
        .values(retired_at=func.now())
    )
    kid = await create_server_key(
        session, keyring, purpose=purpose, algorithm=algorithm, key_size=key_size
    )
    assert kid is not None
    return kid
