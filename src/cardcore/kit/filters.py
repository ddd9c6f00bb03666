"""Query parameters that filter lists: by id, by amount, by time.

- **Ids.** A malformed id in a filter finds nothing, exactly as an unknown or another program's id
  does (the convention for ids in paths is 404, never a hint). `id_filter` documents the parameter;
  `matching_id` builds the condition, and never binds a malformed id (the column type would refuse
  it, which used to answer 500).
- **Amounts** are bounded like every amount (`MAX_AMOUNT`), so the bound is in `/openapi.json`.
- **Times** are `kit.inputs.Timestamp`s: a time PostgreSQL cannot hold is 422, not 500.
"""

from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import ColumnElement, false

from cardcore.kit.money import MAX_AMOUNT
from cardcore.models import ids


def id_filter(prefix: str) -> Any:
    """The `Query()` of a `?<name>=<prefix>_…` filter: `Annotated[str | None, id_filter("bal")]`."""
    return Query(
        max_length=64,
        description=f"Only rows of this `{prefix}_…` id; a malformed or unknown one matches "
        "nothing.",
    )


def matching_id(column: Any, value: str) -> ColumnElement[bool]:
    """`column == value`, or a condition no row meets when `value` is not an id of the column's
    type."""
    if ids.is_valid(column.type.prefix, value):
        matches: ColumnElement[bool] = column == value
        return matches
    return false()


AmountFilter = Annotated[
    int | None,
    Query(
        ge=0, le=MAX_AMOUNT, description="In minor units, 0 to 999,999,999,999.", examples=[1250]
    ),
]
