"""Reads of the audit trail, scoped to a program."""

from datetime import datetime

from sqlalchemy import Select

from cardcore.kit.repository import TenantRepository
from cardcore.models import AuditLog


class AuditLogRepository(TenantRepository[AuditLog]):
    model = AuditLog
    noun = "audit entry"

    def listed(
        self,
        *,
        actor_id: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        object_id: str | None = None,
        request_id: str | None = None,
        channel: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Select[AuditLog]:
        return self.matching(
            (AuditLog.actor_id, actor_id),
            (AuditLog.action, action),
            (AuditLog.outcome, outcome),
            (AuditLog.object_id, object_id),
            (AuditLog.request_id, request_id),
            (AuditLog.channel, channel),
            created_from=created_from,
            created_to=created_to,
        )
