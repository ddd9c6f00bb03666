"""What every value from outside must be, whatever the route: storable text and holdable times.

A schema says what a field means; this module says what PostgreSQL can keep, so that no request
reaches the database with a value it would refuse (which used to answer 500):

- **Text** may not contain NUL (U+0000), which no PostgreSQL `text`, `varchar` or `jsonb` value can
  hold, nor an unpaired surrogate (`"\\ud800"` in JSON), which is not a character at all and cannot
  be encoded as UTF-8. The route class (kit/routing.py) checks every query parameter and header
  the route reads, and every string and key of a JSON or form body, before the handler runs: one
  place, so a field added tomorrow is covered without anyone remembering to. (Path parameters are
  ids, and a malformed id is an unknown one: 404, from the repository.)
- **Times** (`Timestamp`) must come out as a UTC instant that Python, and so the driver, can
  represent: `0001-01-01T00:00:00+14:00` is a valid ISO 8601 string, but in UTC it is a moment of
  year 0.
"""

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import AfterValidator
from starlette.requests import Request

from cardcore.kit.errors import CardcoreError, FieldError
from cardcore.kit.logging import mask_pans

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_CODE = "UNSTORABLE_CHARACTER"
UNSTORABLE_MESSAGE = "Text may not contain NUL (U+0000) or unpaired surrogate characters."


def storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def scrub(text: str) -> str:
    """`text` with what PostgreSQL cannot store replaced by U+FFFD, for text we keep but did not
    choose (a webhook receiver's answer): refusing it is not an option there."""
    return _UNSTORABLE.sub("\ufffd", text)


def _walk(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, str):
        if not storable(value):
            found.append(path or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            key_path = f"{path}.{key}" if path else str(key)
            if not storable(str(key)):
                # The key itself is unstorable: name where it is, not the key.
                found.append(f"{path}.[key]" if path else "[key]")
                continue
            _walk(item, key_path, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}.{index}" if path else str(index), found)


def unstorable_fields(value: Any) -> list[str]:
    """Dotted paths of the strings (and keys) in a JSON value that PostgreSQL cannot store."""
    found: list[str] = []
    _walk(value, "", found)
    return found


def _body_value(content_type: str, body: bytes) -> Any:
    """The body as the handler will see it, or None when it cannot hold bad text (or FastAPI will
    refuse it anyway)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        # Raw NUL bytes make JSON invalid (FastAPI refuses it); NUL and surrogates arrive as \u
        # escapes, or as UTF-8-encoded surrogates, which Python's JSON decoder lets through.
        # Most bodies have neither, and are not parsed twice.
        if b"\\u" not in body and b"\xed" not in body:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None
    if media == "application/x-www-form-urlencoded":
        return [value for pair in parse_qsl(body.decode("latin-1")) for value in pair]
    # multipart/form-data: a file is bytes, not text; its text fields are checked by their routes
    # (types and sides of documents are fixed lists).
    return None


async def refuse_unstorable_text(
    request: Request, *, query: Iterable[str], headers: Iterable[str], has_body: bool
) -> None:
    """Raise 422 VALIDATION_ERROR naming every field whose text PostgreSQL cannot store.

    `query` and `headers` are the names the route reads: anything else it ignores, so anything
    else cannot reach the database."""
    found: list[str] = []
    for name in query:
        if any(not storable(value) for value in request.query_params.getlist(name)):
            found.append(name)
    for name in headers:
        if any(not storable(value) for value in request.headers.getlist(name)):
            found.append(name)
    if has_body:
        body = await request.body()
        if body:
            value = _body_value(request.headers.get("content-type", ""), body)
            if value is not None:
                found.extend(unstorable_fields(value))
    if found:
        raise CardcoreError(
            "VALIDATION_ERROR",
            UNSTORABLE_MESSAGE,
            errors=[
                # A path can hold a caller's dict key; a card number never goes back out.
                FieldError(field=mask_pans(field), code=UNSTORABLE_CODE, message=UNSTORABLE_MESSAGE)
                for field in found
            ],
        )


def _holdable(value: datetime) -> datetime:
    try:
        # What the driver does before sending a time to PostgreSQL (a time without an offset is
        # taken in the server's zone, as the driver takes it).
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(
            "the time is outside 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        ) from None
    return value


# Every time a request carries, in a body or a query: ISO 8601, between 0001-01-01 and 9999-12-31
# once converted to UTC.
Timestamp = Annotated[datetime, AfterValidator(_holdable)]
