"""The success envelopes: `{"data": ...}` and `{"data": [...], "meta": {...}}`."""

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class One(BaseModel, Generic[T]):
    data: T


class ListMeta(BaseModel):
    next_cursor: str | None = Field(
        description="Pass as `?cursor=` for the next page; null on the last page."
    )
    has_more: bool


class Many(BaseModel, Generic[T]):
    data: list[T]
    meta: ListMeta
