from datetime import date, datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from cardcore.models import User

NationalIdType = Literal["NATIONAL_ID", "PASSPORT", "CNIC", "TAX_ID", "SOCIAL_SECURITY", "OTHER"]
AddressType = Literal["RESIDENTIAL", "MAILING", "DELIVERY"]


def masked(last4: str | None) -> str | None:
    return f"****{last4}" if last4 else None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_reference: str | None = Field(
        default=None, min_length=1, max_length=100, description="Your id for this person; unique."
    )
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(
        default=None, max_length=30, description="International form; stored as E.164."
    )


class UserUpdate(UserCreate):
    pass


class UserOut(BaseModel):
    id: str = Field(examples=["usr_01jd3z8k1m2n3p4q5r6s7t8v9w"])
    status: str = Field(description="ACTIVE or CLOSED.")
    external_reference: str | None
    email: str | None
    phone: str | None
    kyc_status: str
    first_name: str | None
    middle_name: str | None
    last_name: str | None
    nationality: str | None
    national_id_type: str | None
    national_id_masked: str | None = Field(description="Only the last four characters show.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> Self:
        return cls(
            id=user.id,
            status=user.status,
            external_reference=user.external_reference,
            email=user.email,
            phone=user.phone,
            kyc_status=user.kyc_status,
            first_name=user.first_name,
            middle_name=user.middle_name,
            last_name=user.last_name,
            nationality=user.nationality,
            national_id_type=user.national_id_type,
            national_id_masked=masked(user.national_id_last4),
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class PersonalInfoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: str = Field(min_length=1, max_length=100)
    middle_name: str | None = Field(default=None, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date
    nationality: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2.")
    national_id_type: NationalIdType
    national_id_number: str = Field(min_length=1, max_length=50)


class PersonalInfoOut(BaseModel):
    first_name: str | None
    middle_name: str | None
    last_name: str | None
    date_of_birth: date | None
    nationality: str | None
    national_id_type: str | None
    national_id_masked: str | None


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: AddressType
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    state: str | None = Field(
        default=None, max_length=10, description="ISO 3166-2 subdivision, e.g. `PL-14` or `14`."
    )
    country: str = Field(min_length=2, max_length=2)


class AddressUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: AddressType | None = None
    line1: str | None = Field(default=None, min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    state: str | None = Field(default=None, max_length=10)
    country: str | None = Field(default=None, min_length=2, max_length=2)


class AddressOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    line1: str
    line2: str | None
    city: str
    postal_code: str | None
    state: str | None
    country: str
    created_at: datetime


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    side: str | None
    content_type: str
    size_bytes: int
    sha256: str
    created_at: datetime


class HistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str
    to_status: str
    reason: str | None
    actor_type: str
    created_at: datetime


class KycOut(BaseModel):
    status: str
    reason: str | None
    personal: PersonalInfoOut
    addresses: list[AddressOut]
    documents: list[DocumentOut]
    history: list[HistoryOut]


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["APPROVED", "REJECTED"]
    reason: str | None = Field(default=None, max_length=500)


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class CorporationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_name: str = Field(min_length=1, max_length=200)
    registration_number: str = Field(min_length=1, max_length=50)
    country: str = Field(min_length=2, max_length=2)
    address_line1: str = Field(min_length=1, max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    state: str | None = Field(default=None, max_length=10)


class CorporationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    legal_name: str
    registration_number: str
    country: str
    address_line1: str
    address_line2: str | None
    city: str
    postal_code: str | None
    state: str | None
    status: str
    kyb_status: str
    kyb_reason: str | None
    created_at: datetime


class KybOut(BaseModel):
    status: str
    reason: str | None
    documents: list[DocumentOut]
    history: list[HistoryOut]


class EmployeeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str
    title: str | None = Field(default=None, max_length=100)


class EmployeeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    corporation_id: str
    user_id: str
    title: str | None
    created_at: datetime


class EmbossingNames(BaseModel):
    names: list[str] = Field(
        description="Fullest first; each upper-case A–Z, space, `.`, `'` or `-`, at most 26."
    )


class Country(BaseModel):
    code: str
    alpha3: str
    numeric: str
    name: str


class Subdivision(BaseModel):
    code: str
    name: str
    type: str
    parent: str | None
