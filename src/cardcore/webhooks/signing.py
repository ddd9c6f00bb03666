"""Webhook secrets and signatures (Standard Webhooks): each subscription's secret, kept encrypted
under the keyring; a message signed with it, and for 24 h after a rotation with the previous one
too, so receivers can switch without missing a message."""

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from cardcore.kit.crypto import Keyring
from cardcore.models import WebhookEndpoint

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
PREVIOUS_SECRET_LIFETIME = timedelta(hours=24)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _context(endpoint_id: str) -> str:
    return f"webhook_secret:{endpoint_id}"


def seal(keyring: Keyring, endpoint_id: str, secret: str) -> bytes:
    """The secret as the subscription's row keeps it."""
    return keyring.encrypt(secret.encode(), _context(endpoint_id))


def signing_secrets(keyring: Keyring, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    current = keyring.decrypt(endpoint.secret_ciphertext, _context(endpoint.id)).decode()
    found = [current]
    if (
        endpoint.previous_secret_ciphertext is not None
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        found.append(
            keyring.decrypt(endpoint.previous_secret_ciphertext, _context(endpoint.id)).decode()
        )
    return found
