"""Structured JSON logs that carry the request id and never carry a card number or a row's values.

Everything that logs — our code through structlog, uvicorn and libraries through the standard
`logging` module — passes through the same processor chain, so the PAN mask cannot be bypassed by
logging from the wrong place. The mask is deliberately broad: any 13–19 digit run (spaces or dashes
allowed between digits) that passes the Luhn check is replaced by its first six and last four
digits, wherever it appears in the event, its fields, or a formatted traceback.

Tracebacks are formatted in that chain too, and there the messages of exceptions that quote data
are left out: a database error quotes the row (PostgreSQL's "Key (email)=(…)", "Failing row
contains (…)", SQLAlchemy's parameters), a validation error quotes its input. Such an exception
is shown by its class and what names the problem (SQLSTATE, constraint, table, column; the
locations of validation errors), with its whole stack; a cardholder's name, birth date or
national id never reaches a log, whoever logs the exception.
"""

import logging
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import Any

import structlog

# A digit, then 12-18 more, each optionally preceded by one space or dash; not inside a longer run.
_CANDIDATE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _mask_match(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return match.group(0)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_pans(text: str) -> str:
    return _CANDIDATE.sub(_mask_match, text)


def contains_card_number(text: str) -> bool:
    """Whether the log mask would change `text`. Where a caller's value would be kept (a request
    id), this is the test, so what counts as a card number is decided in one place."""
    return mask_pans(text) != text


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pans(value)
    if isinstance(value, Mapping):
        return {key: _mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_mask_value(item) for item in value]
    if isinstance(value, int | float | bool) or value is None:
        # A bare integer can be a PAN too (someone logs `pan=int(...)`).
        text = str(value)
        masked = mask_pans(text)
        return value if masked == text else masked
    return mask_pans(str(value))


def mask_card_numbers(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = _mask_value(event_dict[key])
    return event_dict


# Libraries whose exception messages quote data: SQL parameters, rows, validated input.
_QUOTING_MODULES = ("sqlalchemy", "asyncpg", "pydantic", "pydantic_core", "fastapi.exceptions")
_NAMING_ATTRIBUTES = ("sqlstate", "constraint_name", "table_name", "column_name")


def quotes_data(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(_QUOTING_MODULES)


def safe_exception_line(exc: BaseException) -> str:
    """The last line of a traceback, without the message when the message may quote data."""
    kind = type(exc)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if not quotes_data(exc):
        return "".join(traceback.format_exception_only(kind, exc))
    named = [
        f"{attribute.removesuffix('_name')}={value}"
        for attribute in _NAMING_ATTRIBUTES
        if (value := getattr(exc, attribute, None))
    ]
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            named += [
                f"{'.'.join(str(p) for p in e.get('loc', ()))}:{e.get('type')}"
                for e in errors(include_input=False)
            ]
        except TypeError:  # FastAPI's validation exceptions take no arguments
            named += [
                f"{'.'.join(str(p) for p in e.get('loc', ()))}:{e.get('type')}" for e in errors()
            ]
    detail = f" ({', '.join(named)})" if named else ""
    return f"{name}{detail}: [message withheld: it may quote data]\n"


def format_exception_safely(
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None],
) -> str:
    """A traceback as Python prints it (causes first), with `safe_exception_line` for each
    exception's message."""
    blocks: list[str] = []
    current: BaseException | None = exc_info[1]
    seen: set[int] = set()
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        stack = "".join(traceback.format_tb(current.__traceback__))
        block = f"Traceback (most recent call last):\n{stack}{safe_exception_line(current)}"
        blocks.append(block + link)
        if current.__cause__ is not None:
            current = current.__cause__
            link = "\nThe above exception was the direct cause of the following exception:\n\n"
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
            link = "\nDuring handling of the above exception, another exception occurred:\n\n"
        else:
            current = None
    return "".join(reversed(blocks)).rstrip("\n")


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        # A line under the level is dropped first, before the time stamp and the rest are made:
        # at WARNING the access line of every request costs nothing.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks become a string here, without messages that quote data; the mask then
            # sees them too.
            structlog.processors.ExceptionRenderer(format_exception_safely),
            mask_card_numbers,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Our middleware writes one access line per request, with the request id; uvicorn's own access
    # log would duplicate it without one.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # httpx logs every request line (with its query string) at INFO; webhook delivery records
    # its attempts itself.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
