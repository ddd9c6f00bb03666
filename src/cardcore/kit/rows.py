"""New and read rows as plain Python: for code that writes and reads through database functions
on a raw asyncpg connection instead of the ORM (the authorization path, linked ledger transfers).

A row goes to a function as the JSON object of its table's columns (`as_row`), built from the
same models the rest of cardcore uses, so a column is named in one place; a row read raw comes
back with its ids in their public form (`public`).
"""

import functools
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import orjson

from cardcore.models import Base
from cardcore.models.ids import PrefixedId, from_uuid, to_uuid

M = TypeVar("M", bound=Base)


@functools.cache
def id_prefixes(model: type[Base]) -> dict[str, str]:
    """A model's id columns and their prefixes."""
    return {
        column.key: column.type.prefix
        for column in model.__table__.columns
        if isinstance(column.type, PrefixedId)
    }


def public(values: Mapping[str, Any], model: type[Base]) -> dict[str, Any]:
    """A raw row's columns, ids in their public form (from UUIDs, or their text in JSON)."""
    found = dict(values.items())
    for key, prefix in id_prefixes(model).items():
        value = found.get(key)
        if value is not None:
            as_uuid = value if isinstance(value, uuid.UUID) else uuid.UUID(value)
            found[key] = from_uuid(prefix, as_uuid)
    return found


class Facts:
    """A row read raw, its columns as attributes (ids public): what deciding reads of a card or
    a program, as `controls.evaluate` and the card checks take them."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        # Only reached for a column the row did not have: says to type checkers that the
        # attributes are the row's, whatever they are.
        raise AttributeError(name)


@functools.cache
def _columns(model: type[Base]) -> tuple[tuple[str, str | None, bool], ...]:
    """(column, id prefix, required) of the columns the write fills; created_at and updated_at
    are its own."""
    return tuple(
        (
            column.key,
            column.type.prefix if isinstance(column.type, PrefixedId) else None,
            not column.nullable,
        )
        for column in model.__table__.columns
        if column.key not in ("created_at", "updated_at")
    )


class Plain:
    """A row of `model` as plain attributes: what a write function needs of it, without the
    ORM's instrumentation (five rows an authorization, a fifth of its CPU as model instances).
    """

    def __init__(self, model: type[Base], **values: Any) -> None:
        self.__dict__.update(values)
        self.model = model

    def __getattr__(self, name: str) -> None:
        # A column not set reads None, as on a new model instance.
        if name in _names(self.__dict__["model"]):
            return None
        raise AttributeError(name)


def plain(model: type[M]) -> Callable[..., M]:
    """A maker of `model` rows for `as_row`, called as the model would be. What it makes stands
    in for the model's rows wherever they are only read or written to (`Plain`), so it is typed
    as making them."""
    return cast(Callable[..., M], functools.partial(Plain, model))


@functools.cache
def _names(model: type[Base]) -> frozenset[str]:
    return frozenset(column.key for column in model.__table__.columns)


def as_row(instance: Any) -> dict[str, Any]:
    """A new row (a model instance or `Plain`) as the JSON object of its table's columns, ids as
    UUIDs."""
    row: dict[str, Any] = {}
    model: type[Base] = instance.model if isinstance(instance, Plain) else type(instance)
    for key, prefix, required in _columns(model):
        value = instance.__dict__.get(key)
        if value is None:
            if required:
                # A NOT NULL column left to its server default would arrive as NULL.
                raise ValueError(f"{model.__name__}.{key} must be set")
            continue
        row[key] = str(to_uuid(prefix, value)) if prefix else value
    return row


def to_json(value: Any) -> str:
    return orjson.dumps(value).decode()
