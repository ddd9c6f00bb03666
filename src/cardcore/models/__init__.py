"""Every ORM model, imported here so Alembic's autogenerate sees them all."""

from cardcore.models.auth import (
    CardholderSession,
    Credential,
    JwsRequestId,
    RefreshToken,
    ServerKey,
    User,
)
from cardcore.models.base import Base
from cardcore.models.kit import AuditLog, Event, IdempotencyRecord
from cardcore.models.programs import AdminUser, ApiKey, Program
from cardcore.models.webhooks import Job, WebhookAttempt, WebhookEndpoint, WebhookMessage

__all__ = [
    "AdminUser",
    "ApiKey",
    "AuditLog",
    "Base",
    "CardholderSession",
    "Credential",
    "Event",
    "IdempotencyRecord",
    "Job",
    "JwsRequestId",
    "Program",
    "RefreshToken",
    "ServerKey",
    "User",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookMessage",
]
