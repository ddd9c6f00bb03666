"""The authorization path's database side: one read and one write, as prepared statements on
the request's own asyncpg connection (`db.driver_connection`), not through the ORM.

The read, `card_authorization_context`, checks the network key, locks the card's row and then
reads everything a decision needs; the write, `card_authorization_write`, records everything the
decision wrote (both in migrations/versions/2026_12_03_authorization_functions.py). Python
decides in between; the database only keeps what it alone can keep: a ruled account never paying
more than it has, under concurrency, and a network key used once.

Rows go to the write as JSON objects of their columns, built from the same models the rest of
cardcore uses (`as_row`), so a column is named in one place.
"""

import functools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from cardcore.fees import service as fees
from cardcore.kit.ids import PrefixedId, from_uuid, to_uuid
from cardcore.models import Base, Card

READ = (
    "SELECT key_ok, card, timezone, home_country, control_maxima, fx_markup_bps,"
    " balance_currency, user_account, available, deposit_account, deposit_balance,"
    " deposit_threshold, previous, previous_amount, previous_card, spent, fee_versions, fx_rate"
    " FROM card_authorization_context($1::uuid, $2::uuid, $3::uuid, $4::bytea, $5::varchar,"
    " $6::varchar, $7::varchar[], $8::timestamptz[], $9::timestamptz, $10::interval)"
)
WRITE = (
    "SELECT refused_account, available, deposit_available"
    " FROM card_authorization_write($1::jsonb, $2::jsonb, $3::jsonb, $4::jsonb, $5::jsonb,"
    " $6::uuid[], $7::bigint[], $8::bigint[], $9::uuid, $10::uuid, $11::varchar[],"
    " $12::varchar[], $13::timestamptz[], $14::bigint)"
)


@functools.cache
def _prefixes(model: type[Base]) -> dict[str, str]:
    """A model's id columns and their prefixes."""
    return {
        column.key: column.type.prefix
        for column in model.__table__.columns
        if isinstance(column.type, PrefixedId)
    }


def _public(values: Mapping[str, Any], model: type[Base]) -> dict[str, Any]:
    """A raw row's columns, ids in their public form."""
    found = dict(values.items())
    for key, prefix in _prefixes(model).items():
        if found.get(key) is not None:
            found[key] = from_uuid(prefix, found[key])
    return found


class Facts:
    """A row read raw, its columns as attributes (ids public): what deciding reads of a card or
    a program, as `controls.evaluate` and the card checks take them."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class NeedsSession(Exception):
    """The lean path's authorization needs what only the ORM session does (a PIN, a key or
    account not cached yet in this process, a partner deposit crossing its threshold): nothing
    is committed, and the standard route serves the message."""


class _NoSession:
    """The session argument of an authorization on the lean path's own connection: anything
    that would use it raises NeedsSession."""

    def __getattr__(self, name: str) -> Any:
        raise NeedsSession(name)


NO_SESSION: Any = _NoSession()


def _uuid(prefix: str, public_id: str | None) -> uuid.UUID | None:
    return None if public_id is None else to_uuid(prefix, public_id)


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
    """A new row of `model` as plain attributes: what the write needs of it, without the ORM's
    instrumentation (five rows a message, a fifth of an authorization's CPU as model instances).
    """

    def __init__(self, model: type[Base], **values: Any) -> None:
        self.__dict__.update(values)
        self.model = model

    def __getattr__(self, name: str) -> None:
        # A column not set reads None, as on a new model instance.
        if name in _names(self.__dict__["model"]):
            return None
        raise AttributeError(name)


def plain(model: type[Base]) -> Any:
    """A maker of `model` rows for `as_row`, called as the model would be."""
    return functools.partial(Plain, model)


@functools.cache
def _names(model: type[Base]) -> frozenset[str]:
    return frozenset(column.key for column in model.__table__.columns)


def as_row(instance: Any) -> dict[str, Any]:
    """A new row (a model instance or `Plain`) as the JSON object of its table's columns, ids as
    UUIDs."""
    row: dict[str, Any] = {}
    model = instance.model if isinstance(instance, Plain) else type(instance)
    for key, prefix, required in _columns(model):
        value = instance.__dict__.get(key)
        if value is None:
            if required:
                # A NOT NULL column left to its server default would arrive as NULL.
                raise ValueError(f"{model.__name__}.{key} must be set")
            continue
        row[key] = str(to_uuid(prefix, value)) if prefix else value
    return row


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass(slots=True)
class Context:
    """What `card_authorization_context` read. `card` is None when there is no such card (or the
    key is no longer good: `key_ok`)."""

    key_ok: bool
    card: Any = None
    program: Any = None
    balance_currency: str = ""
    user_account: str = ""
    available: int = 0
    deposit_account: str | None = None
    deposit_balance: str | None = None
    deposit_threshold: int | None = None
    previous: dict[str, Any] | None = None
    previous_amount: int | None = None
    previous_card: str | None = None
    spent: list[Any] | None = None
    fee_versions: fees.Versions | None = None
    fx_rate: Decimal | None = None


async def read(
    connection: Any,
    *,
    key_id: str | None,
    program_id: str,
    card_id: str | None,
    pan_hash: bytes | None,
    network_key: str,
    currency: str,
    period_starts: dict[str, datetime],
    at: datetime,
    touch_after: timedelta,
) -> Context:
    """Lock the card and read what deciding needs, in one round trip. `key_id`: the network key
    the message came with, checked afresh (None when the caller checked it already)."""
    record = await connection.fetchrow(
        READ,
        _uuid("key", key_id),
        to_uuid("prg", program_id),
        _uuid("card", card_id),
        pan_hash,
        network_key,
        currency,
        list(period_starts),
        list(period_starts.values()),
        at,
        touch_after,
    )
    if not record["key_ok"] or record["card"] is None:
        return Context(key_ok=record["key_ok"])
    lac = functools.partial(from_uuid, "lac")
    return Context(
        key_ok=True,
        card=Facts(_public(record["card"], Card)),
        program=Facts(
            {
                "id": program_id,
                "timezone": record["timezone"],
                "home_country": record["home_country"],
                "control_maxima": record["control_maxima"],
                "fx_markup_bps": record["fx_markup_bps"],
            }
        ),
        balance_currency=record["balance_currency"],
        user_account=lac(record["user_account"]),
        available=record["available"],
        deposit_account=(
            lac(record["deposit_account"]) if record["deposit_account"] is not None else None
        ),
        deposit_balance=(
            from_uuid("pbl", record["deposit_balance"])
            if record["deposit_balance"] is not None
            else None
        ),
        deposit_threshold=record["deposit_threshold"],
        previous=record["previous"],
        previous_amount=record["previous_amount"],
        previous_card=(
            from_uuid("card", record["previous_card"])
            if record["previous_card"] is not None
            else None
        ),
        spent=record["spent"],
        fee_versions=fees.parse_versions(record["fee_versions"]),
        fx_rate=record["fx_rate"],
    )


@dataclass(slots=True)
class Written:
    """What `card_authorization_write` did: nothing, when `refused_account` (public id) could
    not pay its part; else the user's and the deposit's available balances after the hold."""

    refused_account: str | None
    available: int | None
    deposit_available: int | None


async def write(
    connection: Any,
    *,
    transaction: Any,
    message: Any,
    event: Any,
    transfers: Iterable[Any] = (),
    fee_lines: Iterable[Any] = (),
    user_account: str,
    deposit_account: str | None,
    spend: tuple[list[str], list[str], list[datetime]] | None = None,
    spend_amount: int | None = None,
) -> Written:
    """Record a decided authorization in one round trip: with `transfers` (the holds), all of
    it or, when a ruled account cannot pay, nothing."""
    channels, periods, starts = spend or ([], [], [])
    rows = [as_row(t) for t in transfers]
    moves: dict[str, list[int]] = {}
    for row in rows:
        moves.setdefault(row["debit_account_id"], [0, 0])[0] += row["amount"]
        moves.setdefault(row["credit_account_id"], [0, 0])[1] += row["amount"]
    accounts = sorted(moves)
    record = await connection.fetchrow(
        WRITE,
        _json(as_row(transaction)),
        _json(as_row(message)),
        _json(as_row(event)),
        _json(rows),
        _json([as_row(f) for f in fee_lines]),
        accounts,
        [moves[a][0] for a in accounts],
        [moves[a][1] for a in accounts],
        to_uuid("lac", user_account),
        _uuid("lac", deposit_account),
        channels,
        periods,
        starts,
        spend_amount,
    )
    refused = record["refused_account"]
    return Written(
        refused_account=from_uuid("lac", refused) if refused is not None else None,
        available=record["available"],
        deposit_available=record["deposit_available"],
    )
