"""The KYC / KYB status machine, in one place, for users and corporations alike.

    NOT_STARTED ──edit──▶ PENDING ──submit──▶ IN_REVIEW ──review──▶ APPROVED | REJECTED
    REJECTED ──edit (resubmission)──▶ PENDING
    NOT_STARTED | PENDING | IN_REVIEW ──partner decision──▶ APPROVED | REJECTED

Data may change only in NOT_STARTED, PENDING and REJECTED (the first two leave it PENDING, the
last reopens it); IN_REVIEW and APPROVED are locked. Every change writes a history row and a
`kyc.status_changed` / `kyb.status_changed` event.
"""

from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.customers.events import KybStatusChanged, KycStatusChanged
from cardcore.kit.errors import CardcoreError
from cardcore.kit.outbox import record_event
from cardcore.kit.principals import Principal
from cardcore.models import Corporation, User, VerificationHistory, VerificationStatus


class Action(StrEnum):
    EDIT = "edit"
    SUBMIT = "submit"
    PARTNER_DECISION = "partner_decision"
    REVIEW = "review"


S = VerificationStatus
TRANSITIONS: dict[Action, dict[S, frozenset[S]]] = {
    Action.EDIT: {
        S.NOT_STARTED: frozenset({S.PENDING}),
        S.PENDING: frozenset({S.PENDING}),
        S.REJECTED: frozenset({S.PENDING}),
    },
    Action.SUBMIT: {S.PENDING: frozenset({S.IN_REVIEW})},
    Action.PARTNER_DECISION: {
        state: frozenset({S.APPROVED, S.REJECTED})
        for state in (S.NOT_STARTED, S.PENDING, S.IN_REVIEW)
    },
    Action.REVIEW: {S.IN_REVIEW: frozenset({S.APPROVED, S.REJECTED})},
}

EDITABLE = frozenset(TRANSITIONS[Action.EDIT])


def _status_attr(subject: User | Corporation) -> str:
    return "kyc_status" if isinstance(subject, User) else "kyb_status"


def current(subject: User | Corporation) -> VerificationStatus:
    return VerificationStatus(getattr(subject, _status_attr(subject)))


def check(subject: User | Corporation, action: Action, to: VerificationStatus) -> None:
    state = current(subject)
    if action is Action.EDIT and state not in EDITABLE:
        raise CardcoreError("KYC_LOCKED", f"Verification is {state}; its data cannot change now.")
    if to not in TRANSITIONS[action].get(state, frozenset()):
        raise CardcoreError(
            "INVALID_KYC_TRANSITION", f"Cannot go from {state} to {to} by {action.value}."
        )


async def transition(
    session: AsyncSession,
    subject: User | Corporation,
    action: Action,
    to: VerificationStatus,
    *,
    principal: Principal,
    reason: str | None = None,
) -> None:
    check(subject, action, to)
    before = current(subject)
    if before == to:
        return
    attr = _status_attr(subject)
    setattr(subject, attr, to)
    setattr(subject, attr.replace("status", "reason"), reason)
    is_user = isinstance(subject, User)
    session.add(
        VerificationHistory(
            program_id=subject.program_id,
            subject_type="user" if is_user else "corporation",
            subject_id=subject.id,
            from_status=before,
            to_status=to,
            reason=reason,
            actor_type=principal.kind.value,
            actor_id=principal.actor_id,
        )
    )
    common: dict[str, Any] = {
        "from_status": before.value,
        "to_status": to.value,
        "reason": reason,
        "decided_by": principal.kind.value,
    }
    data = (
        KycStatusChanged(user_id=subject.id, **common)
        if is_user
        else KybStatusChanged(corporation_id=subject.id, **common)
    )
    record_event(session, program_id=subject.program_id, object_id=subject.id, data=data)
    await session.flush()
