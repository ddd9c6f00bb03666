"""Who is calling: resolved once per request, then read by routes, repositories and the audit."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class PrincipalKind(StrEnum):
    ANONYMOUS = "anonymous"
    PARTNER = "partner"
    CARDHOLDER = "cardholder"
    ADMIN = "admin"
    NETWORK = "network"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    program_id: str | None = None
    # The credential or person acting: an API key or credential id for a partner or the network,
    # the user id for a cardholder, the admin user's id for ops staff.
    actor_id: str | None = None
    # How the caller authenticated, for the audit trail: api_key, jwt, jws, session, admin.
    channel: str = "none"
    session_id: str | None = None
    role: str | None = None
    # Cardholders only: when the partner last vouched for a strong check of this user.
    strong_auth_at: datetime | None = None

    @property
    def tenant_id(self) -> str:
        """The program this principal acts in, for routes whose guard guarantees there is one."""
        if self.program_id is None:
            raise RuntimeError(f"a {self.kind} principal has no program")
        return self.program_id

    @property
    def user_id(self) -> str:
        if self.kind is not PrincipalKind.CARDHOLDER or self.actor_id is None:
            raise RuntimeError(f"a {self.kind} principal is not a cardholder")
        return self.actor_id

    @property
    def idempotency_scope(self) -> str | None:
        """Whose Idempotency-Keys these are; None for callers who may not use them. A cardholder's
        keys are their own, so two users of one program cannot replay each other's answers."""
        if self.program_id is None:
            return None
        if self.kind is PrincipalKind.PARTNER:
            return self.program_id
        return f"{self.program_id}:{self.kind.value}:{self.actor_id}"


ANONYMOUS = Principal(PrincipalKind.ANONYMOUS)
