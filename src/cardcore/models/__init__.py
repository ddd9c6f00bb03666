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

__all__ = [
    "AdminUser",
    "ApiKey",
    "AuditLog",
    "Base",
    "CardholderSession",
    "Credential",
    "Event",
    "IdempotencyRecord",
    "JwsRequestId",
    "Program",
    "RefreshToken",
    "ServerKey",
    "User",
]
