"""The card messages' database side: for an authorization and for each follow-up, one read and
one write, as prepared statements on an asyncpg connection (`db.driver_connection`, or the lean
path's own pool), not through the ORM.

The reads (`card_authorization_context`, `card_follow_up_context`) check the network key, find
the card or the authorization — locking it, or noting its row version when the read is a
transaction of its own — and read everything a decision needs; the writes
(`card_authorization_write`, `card_follow_up_write`) record everything the decision wrote, or
nothing when a ruled account cannot pay or, after an unlocked read, when what it read has changed
(`Stale`). The functions are in migrations/versions/2026_12_03_authorization_functions.py and
2026_12_03_follow_up_functions.py. Python decides in between; the database only keeps what it
alone can keep: a ruled account never paying more than it has, under concurrency, a decision
recorded only on what it was made on, and a network key used once.

Rows go to the writes as JSON objects of their columns (`kit/rows.as_row`), built from the same
models the rest of cardcore uses, so a column is named in one place.
"""

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from cardcore.fees import schedules
from cardcore.kit.rows import Facts, as_row, id_prefixes, plain, public, to_json
from cardcore.ledger import service as ledger
from cardcore.models import Base, Card, CardTransaction, Fee, LedgerTransfer
from cardcore.models.ids import from_uuid, to_uuid

T = TypeVar("T")

_CONTEXT = (
    "key_ok, card, card_version, timezone, home_country, control_maxima, fx_markup_bps,"
    " balance_currency, user_account, available, deposit_account, deposit_balance,"
    " deposit_threshold, previous, previous_amount, previous_card, spent, fee_versions, fx_rate"
)
_ASK = (
    "$1::uuid, $2::uuid, $3::uuid, $4::bytea, $5::varchar, $6::varchar, $7::varchar[],"
    " $8::timestamptz[], $9::timestamptz, $10::interval"
)
# Constant SQL, no input (S608).
READ = f"SELECT {_CONTEXT} FROM card_authorization_context({_ASK}, $11::boolean)"  # noqa: S608
READ_UNLOCKED = f"SELECT {_CONTEXT} FROM card_authorization_context({_ASK}, false)"  # noqa: S608
READ_MANY = (
    f"SELECT n, {_CONTEXT}"  # noqa: S608
    " FROM card_authorization_context_many($1::card_authorization_ask[])"
)
WRITE = (
    "SELECT refused_account, available, deposit_available, stale"
    " FROM card_authorization_write($1::jsonb, $2::jsonb, $3::jsonb, $4::jsonb, $5::jsonb,"
    " $6::uuid[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],"
    " $12::uuid, $13::uuid, $14::varchar[], $15::varchar[], $16::timestamptz[], $17::bigint,"
    " $18::bigint, $19::varchar[], $20::timestamptz[], $21::bigint)"
)
WRITE_MANY = (
    "SELECT n, refused_account, available, deposit_available, stale"
    " FROM card_authorization_write_many($1::card_authorization_call[])"
)
_FOLLOW_UP_CONTEXT = (
    "key_ok, transaction, transaction_version, previous, previous_amount, previous_transaction,"
    " user_account, available, clearing_tolerances, holds, held_fees, refunded"
)
_FOLLOW_UP_ASK = "$1::uuid, $2::uuid, $3::uuid, $4::varchar, $5::boolean, $6::interval"
FOLLOW_UP_READ = (
    f"SELECT {_FOLLOW_UP_CONTEXT}"  # noqa: S608
    f" FROM card_follow_up_context({_FOLLOW_UP_ASK}, $7::boolean)"
)
FOLLOW_UP_READ_UNLOCKED = (
    f"SELECT {_FOLLOW_UP_CONTEXT}"  # noqa: S608
    f" FROM card_follow_up_context({_FOLLOW_UP_ASK}, false)"
)
FOLLOW_UP_READ_MANY = (
    f"SELECT n, {_FOLLOW_UP_CONTEXT}"  # noqa: S608
    " FROM card_follow_up_context_many($1::card_follow_up_ask[])"
)
FOLLOW_UP_WRITE = (
    "SELECT stale, refused_account, available"
    " FROM card_follow_up_write($1::uuid, $2::jsonb, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb,"
    " $7::uuid[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],"
    " $13::varchar, $14::uuid, $15::bigint)"
)
FOLLOW_UP_WRITE_MANY = (
    "SELECT n, stale, refused_account, available"
    " FROM card_follow_up_write_many($1::card_follow_up_call[])"
)


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


@dataclass(slots=True)
class Context:
    """What `card_authorization_context` read. `card` is None when there is no such card (or the
    key is no longer good: `key_ok`). `card_version`: the card's row version, for a write that
    checks nothing changed since this read (one made without the card's lock)."""

    key_ok: bool
    card: Any = None
    card_version: int | None = None
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
    fee_versions: schedules.Versions | None = None
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
    lock: bool = True,
) -> Context:
    """Lock the card (unless not `lock`) and read what deciding needs, in one round trip.
    `key_id`: the network key the message came with, checked afresh (None when the caller
    checked it already)."""
    asked = (
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
    if isinstance(connection, Pooled) and not lock:
        record = await connection.reads.call(asked)
    else:
        record = await connection.fetchrow(READ, *asked, lock)
    if not record["key_ok"] or record["card"] is None:
        return Context(key_ok=record["key_ok"])
    lac = functools.partial(from_uuid, "lac")
    return Context(
        key_ok=True,
        card=Facts(public(record["card"], Card)),
        card_version=record["card_version"],
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
        fee_versions=schedules.parse_versions(record["fee_versions"]),
        fx_rate=record["fx_rate"],
    )


@dataclass(slots=True)
class Written:
    """What `card_authorization_write` did: nothing, when `refused_account` (public id) could
    not pay its part; else the user's and the deposit's available balances after the hold."""

    refused_account: str | None
    available: int | None
    deposit_available: int | None


class Stale(Exception):
    """A write after a read without the card's lock found that what the read saw has changed:
    nothing was written; read and decide again."""


# Reads and decisions of an unlocked message before it gives way to the locking one.
STALE_TRIES = 3


async def decided_afresh(attempt: Callable[[], Awaitable[T]], unlocked: bool) -> T:
    """`attempt()` (a read, a decision, a write), again while its write finds the read `Stale`
    (unlocked: up to STALE_TRIES times, then NeedsSession: what it is about is busy, and the
    locking way waits for its turn)."""
    for _ in range(STALE_TRIES if unlocked else 1):
        try:
            return await attempt()
        except Stale:
            continue
    raise NeedsSession("stale")


@dataclass(frozen=True, slots=True)
class Unlocked:
    """For a write after a read without the card's lock: what that read saw, to check that it
    still holds (`card_authorization_write`)."""

    card_version: int
    period_starts: dict[str, datetime]
    spent_count: int


async def write(
    connection: Any,
    *,
    transaction: Any,
    message: Any,
    event: Any,
    moves: ledger.Linked | None = None,
    fee_lines: Iterable[Any] = (),
    user_account: str,
    deposit_account: str | None,
    spend: tuple[list[str], list[str], list[datetime]] | None = None,
    spend_amount: int | None = None,
    unlocked: Unlocked | None = None,
) -> Written:
    """Record a decided authorization in one round trip: with `moves` (the holds), all of it
    or, when a ruled account cannot pay, nothing; after a read without the lock (`unlocked`),
    nothing either when what it read has changed since."""
    channels, periods, starts = spend or ([], [], [])
    moves = moves or ledger.Linked()
    arguments = (
        to_json(as_row(transaction)),
        to_json(as_row(message)),
        to_json(as_row(event)),
        to_json([as_row(t) for t in moves.transfers]),
        to_json([as_row(f) for f in fee_lines]),
        *moves.arrays(),
        to_uuid("lac", user_account),
        _uuid("lac", deposit_account),
        channels,
        periods,
        starts,
        spend_amount,
        unlocked and unlocked.card_version,
        unlocked and list(unlocked.period_starts),
        unlocked and list(unlocked.period_starts.values()),
        unlocked and unlocked.spent_count,
    )
    if isinstance(connection, Pooled):
        record = await connection.writes.call(arguments)
    else:
        record = await connection.fetchrow(WRITE, *arguments)
    if record["stale"]:
        raise Stale
    refused = record["refused_account"]
    return Written(
        refused_account=from_uuid("lac", refused) if refused is not None else None,
        available=record["available"],
        deposit_available=record["deposit_available"],
    )


# Transactions of each kind a process may have in flight at once. With one, a transaction held
# up (a lock waited for, a pause in either process) holds up every message that arrives behind it;
# with two, the next goes beside it. More would only split the batches that make a message cheap.
IN_FLIGHT = 2


class Pooled:
    """A pool of connections as the lean path's connection: a message's read (without the
    card's or the authorization's lock) and its write each made together with those of the
    other messages of its kind this process has in flight (`Together`), no connection held
    while a message is decided."""

    def __init__(self, acquire: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
        self.reads = Together(acquire, READ_UNLOCKED, READ_MANY)
        self.writes = Together(acquire, WRITE, WRITE_MANY)
        self.follow_up_reads = Together(acquire, FOLLOW_UP_READ_UNLOCKED, FOLLOW_UP_READ_MANY)
        self.follow_up_writes = Together(acquire, FOLLOW_UP_WRITE, FOLLOW_UP_WRITE_MANY)

    async def closed(self) -> None:
        """Once every read and write handed in has been made."""
        for together in (self.reads, self.writes, self.follow_up_reads, self.follow_up_writes):
            await together.closed()


class Together:
    """Calls of one function made many to a transaction: `one` with a call's arguments, or
    `many` (`card_authorization_context_many`, `card_follow_up_write_many`, …) with an array
    of them, a row per call (its place in `n`). A commit, a round trip and a statement's
    start-up are then shared by all of them, so the more authorizations arrive together, the
    less each costs.

    Calls wait while `parallel` transactions of them are in flight, and the next takes all that
    waited (up to `most`): alone, a call goes at once, by itself. Each call still does all of
    itself or nothing; should the transaction fail as a whole (one call's error undoes them
    all), each call is made again alone, so one message's failure is its own."""

    def __init__(
        self,
        acquire: Callable[[], AbstractAsyncContextManager[Any]],
        one: str,
        many: str,
        most: int = 64,
        parallel: int = IN_FLIGHT,
    ) -> None:
        self._acquire = acquire
        self._one = one
        self._many = many
        self._most = most
        self._parallel = parallel
        self._waiting: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._makers: set[asyncio.Task[None]] = set()
        # How many transactions and calls were made: what the tests see of the grouping.
        self.transactions = 0
        self.calls = 0

    async def call(self, arguments: tuple[Any, ...]) -> Any:
        """The call's row, once made."""
        made = asyncio.get_running_loop().create_future()
        self._waiting.append((arguments, made))
        if len(self._makers) < self._parallel:
            maker = asyncio.create_task(self._make_waiting())
            self._makers.add(maker)
            maker.add_done_callback(self._makers.discard)
        return await made

    async def closed(self) -> None:
        """Once every call handed in has been made."""
        while self._makers:
            await asyncio.shield(asyncio.wait(set(self._makers)))

    async def _make_waiting(self) -> None:
        while self._waiting:
            calls, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
            await self._make(calls)

    async def _make(self, calls: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        self.transactions += 1
        self.calls += len(calls)
        try:
            async with self._acquire() as connection:
                if len(calls) == 1:
                    records = [await connection.fetchrow(self._one, *calls[0][0])]
                else:
                    rows = await connection.fetch(self._many, [call for call, _ in calls])
                    records = sorted(rows, key=lambda row: row["n"])
            if len(records) != len(calls):
                raise RuntimeError(f"{len(records)} rows for {len(calls)} calls")
        except Exception as exc:
            if len(calls) == 1:
                _settle(calls[0][1], exception=exc)
                return
            for call in calls:
                await self._make([call])
            return
        except BaseException:
            for _, made in calls:
                made.cancel()
            raise
        for (_, made), record in zip(calls, records, strict=True):
            _settle(made, result=record)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, exception: Exception | None = None
) -> None:
    """A call's outcome to the message waiting for it (unless it stopped waiting)."""
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)


@dataclass(slots=True)
class FollowUpContext:
    """What `card_follow_up_context` read about the authorization a follow-up message is about
    (locked, or its `transaction_version` read): `transaction` is None when there is no such
    authorization in the program (or the key is no longer good: `key_ok`). `holds`: the pending
    transfers of its hold and of its HELD fees (`held_fees`), by id."""

    key_ok: bool
    transaction: Any = None
    transaction_version: int | None = None
    previous: dict[str, Any] | None = None
    previous_amount: int | None = None
    previous_transaction: str | None = None
    user_account: str = ""
    available: int = 0
    clearing_tolerances: dict[str, int] = field(default_factory=dict)
    holds: dict[str, Facts] = field(default_factory=dict)
    held_fees: list[Any] = field(default_factory=list)
    refunded: int | None = None


async def read_follow_up(
    connection: Any,
    *,
    key_id: str | None,
    program_id: str,
    transaction_id: str,
    network_key: str,
    refunds: bool,
    touch_after: timedelta,
    lock: bool = True,
) -> FollowUpContext:
    """Lock the authorization (unless not `lock`) and read what its follow-up needs, in one
    round trip."""
    asked = (
        _uuid("key", key_id),
        to_uuid("prg", program_id),
        to_uuid("txn", transaction_id),
        network_key,
        refunds,
        touch_after,
    )
    if isinstance(connection, Pooled) and not lock:
        record = await connection.follow_up_reads.call(asked)
    else:
        record = await connection.fetchrow(FOLLOW_UP_READ, *asked, lock)
    if not record["key_ok"] or record["transaction"] is None:
        return FollowUpContext(key_ok=record["key_ok"])
    holds = (Facts(public(h, LedgerTransfer)) for h in record["holds"] or ())
    return FollowUpContext(
        key_ok=True,
        transaction=Facts(public(record["transaction"], CardTransaction)),
        transaction_version=record["transaction_version"],
        previous=record["previous"],
        previous_amount=record["previous_amount"],
        previous_transaction=_public_id("txn", record["previous_transaction"]),
        user_account=from_uuid("lac", record["user_account"]),
        available=record["available"],
        clearing_tolerances=record["clearing_tolerances"] or {},
        holds={h.id: h for h in holds},
        held_fees=[_PLAIN_FEE(**public(f, Fee)) for f in record["held_fees"] or ()],
        refunded=record["refunded"],
    )


_PLAIN_FEE = plain(Fee)
# What a follow-up may change of a fee line.
_FEE_CHANGES = (
    "status",
    "amount",
    "basis_amount",
    "ledger_transfer_id",
    "charged_at",
    "reason",
    "next_attempt_at",
)
# ... and of its authorization.
_TRANSACTION_CHANGES = (
    "status",
    "held_amount",
    "settled_amount",
    "hold_transfer_id",
    "deposit_hold_transfer_id",
)


def _public_id(prefix: str, value: uuid.UUID | None) -> str | None:
    return None if value is None else from_uuid(prefix, value)


def _changes(row: Any, columns: tuple[str, ...], model: type[Base]) -> dict[str, Any]:
    """Columns of a row read and changed in Python, ids as UUIDs, for a write function."""
    prefixes = id_prefixes(model)
    found = {}
    for column in columns:
        value = getattr(row, column)
        if column in prefixes and value is not None:
            value = str(to_uuid(prefixes[column], value))
        found[column] = value
    return found


async def write_follow_up(
    connection: Any,
    *,
    transaction: Any,
    changed: bool,
    fee_lines: Iterable[Any],
    message: Any,
    events: Iterable[Any],
    moves: ledger.Linked,
    user_account: str,
    version: int | None = None,
) -> Written:
    """Record a follow-up in one round trip: the linked transfers `moves`, the authorization's
    columns (when `changed`), its fee lines, the message and the events; or, when a ruled
    account cannot pay its part, nothing (`refused_account`). `version`: the authorization's
    row version as read without its lock; raises Stale, having written nothing, when the row
    has changed since."""
    arguments = (
        to_uuid("txn", transaction.id),
        to_json(_changes(transaction, _TRANSACTION_CHANGES, CardTransaction)) if changed else None,
        to_json([_changes(f, ("id", *_FEE_CHANGES), Fee) for f in fee_lines]),
        to_json(as_row(message)),
        to_json([as_row(e) for e in events]),
        to_json([as_row(t) for t in moves.transfers]),
        *moves.arrays(),
        transaction.billing_currency,
        to_uuid("lac", user_account),
        version,
    )
    if isinstance(connection, Pooled):
        record = await connection.follow_up_writes.call(arguments)
    else:
        record = await connection.fetchrow(FOLLOW_UP_WRITE, *arguments)
    if record["stale"]:
        raise Stale
    refused = record["refused_account"]
    return Written(
        refused_account=_public_id("lac", refused),
        available=record["available"],
        deposit_available=None,
    )
