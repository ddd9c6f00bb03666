"""Who is calling: resolved once per request, then read by routes, repositories and the audit."""

from dataclasses import dataclass
from enum import StrEnum


class PrincipalKind(StrEnum):
    ANONYMOUS = "anonymous"
    PARTNER = "partner"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    program_id: str | None = None
    # The credential or person acting: an API key id for a partner.
    actor_id: str | None = None
    # How the caller authenticated, for the audit trail: "api_key", ...
    channel: str = "none"

    @property
    def tenant_id(self) -> str:
        """The program this principal acts in, for routes whose guard guarantees there is one."""
        if self.program_id is None:
            raise RuntimeError(f"a {self.kind} principal has no program")
        return self.program_id

    @property
    def idempotency_scope(self) -> str | None:
        """Whose Idempotency-Keys these are; None for callers who may not use them."""
        return self.program_id


ANONYMOUS = Principal(PrincipalKind.ANONYMOUS)
