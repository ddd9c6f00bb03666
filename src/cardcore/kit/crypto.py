"""Secrets at rest: AES-256-GCM under versioned master keys.

`CARDCORE_MASTER_KEYS` is a comma-separated list of `name:base64(32 bytes)`; the last key
encrypts, every listed key decrypts, so a key is rotated by appending a new one and dropping the
old one once nothing is encrypted under it. Unset, a key is generated on first use into
`CARDCORE_DATA_DIR/master.key` (mode 0600) — right for one machine; several hosts or containers
must share one `CARDCORE_MASTER_KEYS`. Each ciphertext is bound to a context string (the row it
belongs to), so a ciphertext copied into another row does not decrypt.
"""

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cardcore.config import Settings

_NONCE_BYTES = 12


class MasterKeyError(Exception):
    pass


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    current: str

    def encrypt(self, plaintext: bytes, context: str) -> bytes:
        name = self.current.encode()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(self.keys[self.current]).encrypt(nonce, plaintext, context.encode())
        return bytes([len(name)]) + name + nonce + sealed

    def lookup_hash(self, value: str, purpose: str) -> bytes:
        """A keyed hash for finding rows by a secret value (a national id, later a PAN) without
        storing it in clear. Keyed by the first listed master key, so adding keys does not
        change existing hashes: keep that key listed while rows hashed under it exist."""
        return self.keyed_digest(value.encode(), purpose)

    def keyed_digest(self, data: bytes, purpose: str) -> bytes:
        """`lookup_hash` for bytes: a digest nobody without the master key can recompute, so a
        low-entropy secret inside `data` (a PIN, most of a PAN) cannot be guessed back from it."""
        first = next(iter(self.keys.values()))
        key = hmac.new(first, f"lookup:{purpose}".encode(), hashlib.sha256).digest()
        return hmac.new(key, data, hashlib.sha256).digest()

    def decrypt(self, blob: bytes, context: str) -> bytes:
        name_length = blob[0]
        name = blob[1 : 1 + name_length].decode()
        nonce = blob[1 + name_length : 1 + name_length + _NONCE_BYTES]
        if name not in self.keys:
            raise MasterKeyError(f"no master key named {name!r} is configured")
        return AESGCM(self.keys[name]).decrypt(
            nonce, blob[1 + name_length + _NONCE_BYTES :], context.encode()
        )


def parse_keys(value: str) -> Keyring:
    keys: dict[str, bytes] = {}
    name = ""
    for item in value.split(","):
        name, sep, encoded = item.strip().partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            key = b""
        if not sep or not name or len(name) > 50 or len(key) != 32:
            raise MasterKeyError("CARDCORE_MASTER_KEYS must be name:base64-of-32-bytes[,...]")
        keys[name] = key
    return Keyring(keys=keys, current=name)


def generate_key_spec(name: str = "k1") -> str:
    return f"{name}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def _key_file(data_dir: Path) -> str:
    path = data_dir.expanduser().resolve() / "master.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_key_spec() + "\n")
    return path.read_text().strip()


def load_keyring(settings: Settings) -> Keyring:
    return parse_keys(settings.master_keys or _key_file(settings.data_dir))


def sha256_digest(value: str) -> bytes:
    """For high-entropy secrets we generate (API keys, client secrets, refresh tokens): 256 random
    bits cannot be guessed back from their hash, so a fast hash is enough."""
    return hashlib.sha256(value.encode()).digest()


# For secrets people choose (admin passwords): slow and salted.
password_hasher = PasswordHasher()
