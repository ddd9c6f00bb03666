from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

RoleName = Literal["admin", "manager", "employee"]


class AdminLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    program_id: str = Field(examples=["prg_01jd3z8k1m2n3p4q5r6s7t8v9w"])
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class AdminOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    role: str
    active: bool
    created_at: datetime


class AdminToken(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    admin: AdminOut


class AdminCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=12, max_length=1024)
    role: RoleName


class AdminUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: RoleName | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class NetworkKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["processor"])


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    actor_type: str
    actor_id: str | None
    channel: str
    action: str
    method: str
    path: str
    object_id: str | None
    request_id: str | None
    outcome: str = Field(description="success, failure, replayed or error.")
    status_code: int
    error_code: str | None
    created_at: datetime
