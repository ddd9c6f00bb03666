"""Where uploaded files (identity documents) are kept: never in a database row.

The default writes each file under `CARDCORE_DATA_DIR/documents/`, encrypted with the master
keyring (AES-256-GCM bound to the file's key), mode 0600, written to a temporary name and renamed
so a crash never leaves half a document. Another backend (an object store) implements the same
two methods."""

import asyncio
import os
from pathlib import Path
from typing import Protocol

from cardcore.kit.crypto import Keyring


class DocumentStorage(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...


class EncryptedFileStorage:
    def __init__(self, root: Path, keyring: Keyring) -> None:
        self.root = root.expanduser().resolve()
        self.keyring = keyring

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return path

    async def put(self, key: str, data: bytes) -> None:
        sealed = self.keyring.encrypt(data, f"document:{key}")
        await asyncio.to_thread(self._write, self._path(key), sealed)

    async def get(self, key: str) -> bytes:
        sealed = await asyncio.to_thread(self._path(key).read_bytes)
        return self.keyring.decrypt(sealed, f"document:{key}")

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
