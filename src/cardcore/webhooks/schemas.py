from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, examples=["https://partner.example.com/cardcore/events"])
    event_types: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Exact types (`card.created`) or prefixes (`card.*`); empty: every type.",
    )
    description: str | None = Field(default=None, max_length=500)
    enabled: bool = True


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    event_types: list[str] | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(
        default=None, description="Enabling a disabled subscription clears its failure state."
    )


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["whk_01jd3z8k1m2n3p4q5r6s7t8v9w"])
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str = Field(
        description="`whsec_…`: verifies our `webhook-signature` (Standard Webhooks). Shown once."
    )


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    message_id: str
    webhook_id: str = Field(validation_alias="endpoint_id")
    event_id: str
    url: str
    success: bool
    status_code: int | None
    latency_ms: int
    response_snippet: str | None
    error: str | None
    created_at: datetime


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    webhook_id: str = Field(validation_alias="endpoint_id")
    event_id: str
    status: str = Field(description="pending, succeeded or failed.")
    attempts: int
    next_attempt_at: datetime
    last_error: str | None


class RecoverResult(BaseModel):
    requeued: int


class EventTypeOut(BaseModel):
    type: str
    description: str
    version: int
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
