from sqlalchemy import Select

from cardcore.kit.repository import TenantRepository
from cardcore.models import Event


class EventRepository(TenantRepository[Event]):
    model = Event
    noun = "event"

    def of_type(self, type: str | None) -> Select[Event]:
        return self.matching((Event.type, type))
