from cardcore.kit.repository import TenantRepository
from cardcore.models import Event


class EventRepository(TenantRepository[Event]):
    model = Event
    noun = "event"
