from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["evt_01jd3z8k1m2n3p4q5r6s7t8v9w"])
    type: str = Field(examples=["api_key.created"])
    version: int = Field(description="Version of the payload's schema for this type.")
    object_id: str | None = Field(description="The object the event is about.")
    data: dict[str, Any]
    request_id: str | None = Field(description="The request that caused it, if any.")
    created_at: datetime
