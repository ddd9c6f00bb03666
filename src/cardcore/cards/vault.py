"""The PAN vault.

A PAN is encrypted with AES-256-GCM under a versioned data key; data keys are stored wrapped by
the master keyring (CARDCORE_MASTER_KEYS), so the database alone never yields a PAN. A keyed
HMAC (its own derived key) finds a card by PAN and keeps PANs unique per network. The BIN and
last four are the only digits kept in clear. `cardcore keys rotate-pan` adds a data key version
and re-encrypts every card under it, in small batches, while the service keeps running.
"""

import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.crypto import Keyring
from cardcore.models import Card, PanDataKey

_NONCE = 12


class PanVault:
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._keys: dict[int, bytes] = {}

    def lookup_hash(self, pan: str) -> bytes:
        return self.keyring.lookup_hash(pan, "pan")

    async def _key(self, session: AsyncSession, version: int) -> bytes:
        if version not in self._keys:
            wrapped = await session.scalar(
                select(PanDataKey.wrapped_key).where(PanDataKey.version == version)
            )
            if wrapped is None:
                raise LookupError(f"no PAN data key version {version}")
            self._keys[version] = self.keyring.decrypt(wrapped, f"pan_data_key:{version}")
        return self._keys[version]

    async def current_version(self, session: AsyncSession) -> int:
        version = await session.scalar(select(func.max(PanDataKey.version)))
        if version is None:
            version = await self.add_key(session)
        return int(version)

    async def add_key(self, session: AsyncSession) -> int:
        highest = await session.scalar(select(func.max(PanDataKey.version)))
        version = (highest or 0) + 1
        key = secrets.token_bytes(32)
        session.add(
            PanDataKey(
                version=version,
                wrapped_key=self.keyring.encrypt(key, f"pan_data_key:{version}"),
            )
        )
        await session.flush()
        self._keys[version] = key
        return version

    async def encrypt(self, session: AsyncSession, card_id: str, pan: str) -> tuple[int, bytes]:
        version = await self.current_version(session)
        nonce = secrets.token_bytes(_NONCE)
        sealed = AESGCM(await self._key(session, version)).encrypt(
            nonce, pan.encode(), card_id.encode()
        )
        return version, nonce + sealed

    async def decrypt(self, session: AsyncSession, card: Card) -> str:
        key = await self._key(session, card.pan_key_version)
        blob = card.pan_ciphertext
        return AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], card.id.encode()).decode()

    async def reencrypt_batch(self, session: AsyncSession, version: int, limit: int = 500) -> int:
        """Move up to `limit` cards to data key `version`; returns how many moved."""
        cards = (
            await session.scalars(
                select(Card)
                .where(Card.pan_key_version < version)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for card in cards:
            pan = await self.decrypt(session, card)
            nonce = secrets.token_bytes(_NONCE)
            sealed = AESGCM(await self._key(session, version)).encrypt(
                nonce, pan.encode(), card.id.encode()
            )
            await session.execute(
                update(Card)
                .where(Card.id == card.id)
                .values(pan_ciphertext=nonce + sealed, pan_key_version=version)
                .execution_options(synchronize_session=False)
            )
        return len(cards)

    async def cards_below(self, session: AsyncSession, version: int) -> int:
        found = await session.scalar(
            select(func.count()).select_from(Card).where(Card.pan_key_version < version)
        )
        return int(found or 0)
