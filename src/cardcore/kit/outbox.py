"""The event outbox and the catalog of event types.

An event type is a Pydantic model registered with `@event_type`: the model is what builds the
event's `data`, and its JSON Schema is what `GET /v1/event-types` publishes, so the catalog
cannot drift from what is sent. Events are recorded in the transaction that made the change they
describe: a committed change always has its event, a rolled-back one never does. Webhook delivery
reads the same table.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.context import current_request_id
from cardcore.models import Event
from cardcore.models.ids import new_id


class EventData(BaseModel):
    """Base of every event payload."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    version: int
    model: type[EventData]


EVENT_TYPES: dict[str, EventType] = {}
_BY_MODEL: dict[type[EventData], EventType] = {}

D = TypeVar("D", bound=type[EventData])


def event_type(name: str, description: str, *, version: int = 1) -> Callable[[D], D]:
    def register(model: D) -> D:
        if name in EVENT_TYPES:
            raise ValueError(f"event type {name} is registered twice")
        entry = EventType(name=name, description=description, version=version, model=model)
        EVENT_TYPES[name] = entry
        _BY_MODEL[model] = entry
        return model

    return register


def new_event(
    *,
    program_id: str,
    object_id: str | None,
    data: EventData,
    make: Callable[..., Event] = Event,
) -> Event:
    """The event's row, not yet added anywhere: for a caller that writes it itself, in the same
    transaction as its change (the authorization path's one write, whose plain rows `make`
    makes)."""
    entry = _BY_MODEL[type(data)]
    return make(
        id=new_id("evt"),
        program_id=program_id,
        type=entry.name,
        version=entry.version,
        object_id=object_id,
        data=data.model_dump(mode="json"),
        request_id=current_request_id(),
    )


def record_event(
    session: AsyncSession, *, program_id: str, object_id: str | None, data: EventData
) -> Event:
    """Add the event to the session; it commits or rolls back with the change it describes."""
    event = new_event(program_id=program_id, object_id=object_id, data=data)
    session.add(event)
    return event


def catalog() -> list[dict[str, Any]]:
    return [
        {
            "type": entry.name,
            "description": entry.description,
            "version": entry.version,
            "schema": entry.model.model_json_schema(),
        }
        for entry in sorted(EVENT_TYPES.values(), key=lambda e: e.name)
    ]
