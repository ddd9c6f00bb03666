from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from cardcore.models import ApiKey, ProgramMode


class ProgramOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["prg_01jd3z8k1m2n3p4q5r6s7t8v9w"])
    name: str
    status: str = Field(description="ACTIVE or SUSPENDED.")
    mode: ProgramMode = Field(
        description="`live` moves real money; `test` (the sandbox) moves play money and may use "
        "`/v1/simulate/*`. Set when the program is made and never changes; the program's "
        "secrets start with it (`ck_live_…` / `ck_test_…`).",
        examples=["live"],
    )
    currencies: list[str] = Field(description="ISO 4217 codes this program may hold money in.")
    created_at: datetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["payments backend"])


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["key_01jd3z8k1m2n3p4q5r6s7t8v9w"])
    name: str
    kind: str = Field(description="`partner`: calls the partner API of its program.")
    prefix: str = Field(
        validation_alias="display_prefix",
        description="The key's first characters, to tell keys apart. Never the whole key.",
        examples=["ck_live_Xy3k"],
    )
    status: str = Field(description="ACTIVE or REVOKED.")
    created_at: datetime
    last_used_at: datetime | None = Field(description="Last authenticated use, to within a minute.")
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey, **extra: str) -> Self:
        return cls.model_validate(
            {
                "id": key.id,
                "name": key.name,
                "kind": key.kind,
                "display_prefix": key.display_prefix,
                "status": "REVOKED" if key.revoked_at else "ACTIVE",
                "created_at": key.created_at,
                "last_used_at": key.last_used_at,
                "revoked_at": key.revoked_at,
                **extra,
            }
        )


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(
        description="The API key. Shown this once: cardcore keeps only a hash of it.",
        examples=["ck_live_3q2…"],
    )
