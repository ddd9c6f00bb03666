"""Reads of users, addresses and corporations, scoped to a program; a subject's KYC/KYB history."""

from collections.abc import Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.repository import TenantRepository
from cardcore.models import (
    Address,
    Corporation,
    CustomerStatus,
    User,
    VerificationHistory,
    VerificationStatus,
)


class UserRepository(TenantRepository[User]):
    model = User
    noun = "user"

    def listed(
        self,
        *,
        status: CustomerStatus | None = None,
        kyc_status: VerificationStatus | None = None,
        email: str | None = None,
        phone: str | None = None,
        external_reference: str | None = None,
        national_id_hash: bytes | None = None,
    ) -> Select[User]:
        """Users matching every filter given; `email` (normalised) without regard to case,
        `phone` normalised, the national id by its keyed hash."""
        statement = self.matching(
            (User.status, status),
            (User.kyc_status, kyc_status),
            (User.phone, phone),
            (User.external_reference, external_reference),
            (User.national_id_hash, national_id_hash),
        )
        if email is not None:
            statement = statement.where(func.lower(User.email) == email.lower())
        return statement


class AddressRepository(TenantRepository[Address]):
    model = Address
    noun = "address"


class CorporationRepository(TenantRepository[Corporation]):
    model = Corporation
    noun = "corporation"

    def listed(self, *, kyb_status: VerificationStatus | None = None) -> Select[Corporation]:
        return self.matching((Corporation.kyb_status, kyb_status))


async def verification_history(
    session: AsyncSession, subject_id: str
) -> Sequence[VerificationHistory]:
    """A user's KYC or a corporation's KYB steps, oldest first (the subject read through its
    repository)."""
    rows = await session.scalars(
        select(VerificationHistory)
        .where(VerificationHistory.subject_id == subject_id)
        .order_by(VerificationHistory.id)
    )
    return rows.all()
