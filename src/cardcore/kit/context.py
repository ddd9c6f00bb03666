"""What the current request is, for code far from the HTTP layer (logs, events, audit)."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("cardcore_request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()
