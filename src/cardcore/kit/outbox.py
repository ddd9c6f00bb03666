"""The event outbox: record what happened, in the transaction that made it happen."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.context import current_request_id
from cardcore.models import Event


def record_event(
    session: AsyncSession,
    *,
    program_id: str,
    type: str,
    object_id: str | None,
    data: dict[str, Any],
    version: int = 1,
) -> Event:
    """Add an event to the session; it commits or rolls back with the change it describes."""
    event = Event(
        program_id=program_id,
        type=type,
        version=version,
        object_id=object_id,
        data=data,
        request_id=current_request_id(),
    )
    session.add(event)
    return event
