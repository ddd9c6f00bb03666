"""Keyset (cursor) pagination, newest first.

Ids are time-sortable, so `ORDER BY id DESC` is newest first and `WHERE id < :last` is the next
page: every page costs one index range scan however deep the caller goes, and rows inserted while
paging neither repeat nor shift the pages. The cursor is opaque to callers (base64 of the last id)
so its form can change without breaking them.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.envelope import ListMeta
from cardcore.kit.errors import validation_error
from cardcore.models import ids


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


def page_params(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size, 1–100.")] = 20,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="`meta.next_cursor` from the previous page."),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


Pagination = Annotated[PageParams, Depends(page_params)]


def encode_cursor(last_id: str) -> str:
    raw = json.dumps({"id": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        last_id = json.loads(base64.urlsafe_b64decode(padded.encode()))["id"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        last_id = None
    if not isinstance(last_id, str) or not ids.is_valid(prefix, last_id):
        raise validation_error("cursor", "INVALID_CURSOR", "This cursor is not valid here.")
    return last_id


async def paginate(
    session: AsyncSession, statement: Select[Any], id_column: Any, params: PageParams
) -> tuple[list[Any], ListMeta]:
    """Run `statement` (a select of one ORM entity, filtered but not ordered) for one page."""
    if params.cursor is not None:
        statement = statement.where(id_column < decode_cursor(params.cursor, id_column.type.prefix))
    rows = list(
        (await session.scalars(statement.order_by(id_column.desc()).limit(params.limit + 1))).all()
    )
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    next_cursor = encode_cursor(rows[-1].id) if has_more else None
    return rows, ListMeta(next_cursor=next_cursor, has_more=has_more)
