"""What a database error may tell a caller, and what it may tell a log: never the row's values.

PostgreSQL puts values in its messages ("Key (email)=(ana@example.com) already exists", "Failing
row contains (…, Zofia, 1990-04-01, …)"), the driver puts rejected parameters in its own ("invalid
input for query argument $3: …") and SQLAlchemy appends the statement and its parameters. So a
database error is described by what names the problem, never by its text: the exception class,
the SQLSTATE, and the constraint, table and column names.

Some of these errors are the caller's doing, not ours, and answer 4xx as a backstop behind the
schemas: a unique key taken (409 ALREADY_EXISTS), a number or time beyond what a column holds
(422 VALUE_OUT_OF_RANGE), text a column cannot store (422 VALIDATION_ERROR). Everything else is
still a 500.
"""

from collections.abc import Iterator
from typing import Any

from asyncpg.exceptions import PostgresError
from asyncpg.exceptions import _base as asyncpg_base
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.errors import CardcoreError, NotFound
from cardcore.kit.inputs import UNSTORABLE_MESSAGE
from cardcore.models.ids import MalformedId

UNIQUE_VIOLATION = "23505"
_OUT_OF_RANGE = {"22003", "22008", "22015"}  # numeric, datetime field, interval field overflow
_UNSTORABLE_TEXT = {"22021", "22P05"}  # character not in repertoire, untranslatable character
_TOO_LONG = "22001"


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the DBAPI error SQLAlchemy wraps, and the causes behind them (not the context: an
    error being handled when this one happened did not cause it)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend([getattr(current, "orig", None), current.__cause__])


def is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, StatementError | PostgresError | asyncpg_base.InterfaceError) or (
        type(exc).__module__.startswith("sqlalchemy.dialects")
    )


def _server_error(exc: BaseException) -> PostgresError | None:
    return next((e for e in chain(exc) if isinstance(e, PostgresError)), None)


def describe(exc: BaseException) -> dict[str, Any]:
    """Log fields for a database error: names of things, never values."""
    fields: dict[str, Any] = {"error": type(exc).__name__}
    server = _server_error(exc)
    if server is not None:
        fields["sqlstate"] = server.sqlstate
        for name in ("constraint_name", "table_name", "column_name"):
            value = getattr(server, name, None)
            if value:
                fields[name.removesuffix("_name")] = value
    else:
        client = next((e for e in chain(exc) if isinstance(e, asyncpg_base.InterfaceError)), None)
        if client is not None:
            cause = client.__cause__
            fields["driver_error"] = type(client).__name__
            if cause is not None:
                fields["driver_cause"] = type(cause).__name__
    return fields


def client_error(exc: BaseException) -> CardcoreError | None:
    """The 4xx a database error means for the caller, or None when it is our failure (500)."""
    if not is_database_error(exc):
        return None
    links = list(chain(exc))
    if any(isinstance(e, MalformedId) for e in links):
        # An id from outside that no check caught on its way in: it names nothing here.
        return NotFound()
    server = _server_error(exc)
    if server is not None:
        state = server.sqlstate
        if state == UNIQUE_VIOLATION:
            return CardcoreError("ALREADY_EXISTS")
        if state in _OUT_OF_RANGE:
            return CardcoreError("VALUE_OUT_OF_RANGE")
        if state in _UNSTORABLE_TEXT:
            return CardcoreError("VALIDATION_ERROR", UNSTORABLE_MESSAGE)
        if state == _TOO_LONG:
            return CardcoreError("VALIDATION_ERROR", "A text in this request is too long.")
        return None
    # Refused by the driver before it reached the server: a parameter it cannot encode.
    for link in links:
        if isinstance(link, asyncpg_base.DataError):
            if isinstance(link.__cause__, OverflowError):
                return CardcoreError("VALUE_OUT_OF_RANGE")
            if isinstance(link.__cause__, UnicodeError):
                return CardcoreError("VALIDATION_ERROR", UNSTORABLE_MESSAGE)
    return None


async def flush_unique(session: AsyncSession, message: str) -> None:
    """Flush in a savepoint, so that a taken unique key fails only this statement (not the
    request's transaction) and answers 409 ALREADY_EXISTS with `message`."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise CardcoreError("ALREADY_EXISTS", message) from exc
