"""A program with N funded cards: one made through the API, the rest cloned from it in SQL.

The API makes one of everything (partner balance, product, user, balance, reload, card, and in
--large mode one authorization that is then cleared), exactly as a partner would. Bulk loading
then copies those rows column by column with `INSERT … SELECT … FROM generate_series`, changing
only ids, links, amounts and the PAN hash, so the clones are whatever the API writes today, and
a column added by a later migration is copied without touching this file.

Money follows the real path, so `cardcore ledger verify` stays clean: ops reload the partner's
CREDIT balance from the program's `funding` account through the API (one transfer for all cards),
and every cloned balance gets its own clone of the API's reload transfer from that CREDIT
balance. Past transactions (--large) are settled ones: a pending transfer from the card's
balance to the program's `card_network` account, posted by a clearing.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from bench import idscheme as k
from bench.idscheme import IdScheme
from bench.server import Database, Server, cardcore
from cardcore.kit.money import MAX_AMOUNT
from cardcore.models.ids import to_uuid

CURRENCY = "EUR"
PRODUCT = {
    "name": "Bench Classic",
    "network": "VISA",
    "bin": "45717360",
    "form_factors": ["VIRTUAL"],
    "kind": "DEBIT",
    "currency": CURRENCY,
}
MERCHANT = {"name": "Shop", "mcc": "5411", "country": "PL", "city": "Warszawa"}
# Past transactions' amounts: a spread of small purchases, the same formula in every statement.
HISTORY_DAYS = 180
# Below this many rows one statement does it; above, it is split between the connections.
PARALLEL_FROM = 50_000
# The amount of the template authorization that every past transaction copies.
TEMPLATE_AMOUNT = 1000
# The template's network transaction ids contain this; each past transaction gets its own.
TEMPLATE_MARKER = "bench-template"


def authorization_body(card_id: str, amount: int, ntx: str) -> dict[str, Any]:
    return {
        "card_id": card_id,
        "amount": amount,
        "currency": CURRENCY,
        "merchant": MERCHANT,
        "channel": "POS",
        "entry_mode": "CHIP",
        "network": {"network_transaction_id": ntx},
    }


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:500]}"
        )
    body = response.json()
    return body.get("data", body)  # type: ignore[no-any-return]


@dataclass
class Template:
    """Ids of the rows the API made, which the bulk load copies."""

    program_id: str
    network_key: str
    network_key_id: str
    product_id: str
    user_id: str
    balance_id: str
    card_id: str
    # Milliseconds around the template authorization and clearing (--large): the rows they
    # wrote are the ones with ULIDs in this window.
    history_window: tuple[int, int] | None
    # The ledger rows behind them, which the API does not name (see resolve_template).
    account_id: str = ""
    reload_transfer_id: str = ""
    partner_credit_account: str = ""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def make_template(server: Server, fund: int, cards: int, with_history: bool) -> Template:
    """Everything once, through the API."""
    created = json.loads(cardcore(server.env, "bootstrap", "--program", "bench", "--json"))
    program_id = created["program_id"]
    partner = {"X-API-Key": created["api_key"]}
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        login = _ok(
            http.post(
                "/v1/admin/auth/login",
                json={
                    "program_id": program_id,
                    "email": created["admin_email"],
                    "password": created["admin_password"],
                },
            )
        )
        admin = {"Authorization": f"Bearer {login['access_token']}"}
        credit = _ok(
            http.post(
                "/v1/admin/partner-balances",
                json={"type": "CREDIT", "currency": CURRENCY},
                headers=admin,
            )
        )
        # Wires from the funding account cover every card's reload: as few as the API's largest
        # amount allows (a million cards of 10,000.00 are more than one wire can carry).
        total = fund * (cards + 1)
        while total > 0:
            wire = min(total, MAX_AMOUNT)
            _ok(
                http.post(
                    f"/v1/admin/partner-balances/{credit['id']}/reload",
                    json={"amount": wire, "reference": "bench"},
                    headers=admin,
                )
            )
            total -= wire
        product = _ok(http.post("/v1/admin/products", json=PRODUCT, headers=admin))
        user = _ok(http.post("/v1/users", json={}, headers=partner))
        _ok(
            http.post(
                f"/v1/users/{user['id']}/kyc/decision",
                json={"decision": "APPROVED"},
                headers=partner,
            )
        )
        balance = _ok(
            http.post(
                "/v1/balances", json={"user_id": user["id"], "currency": CURRENCY}, headers=partner
            )
        )
        _ok(
            http.post(
                f"/v1/balances/{balance['id']}/reload",
                json={"amount": fund, "currency": CURRENCY},
                headers=partner,
            )
        )
        card = _ok(
            http.post(
                "/v1/cards",
                json={
                    "type": "VIRTUAL",
                    "product_id": product["id"],
                    "user_id": user["id"],
                    "balance_id": balance["id"],
                },
                headers=partner,
            )
        )
        network = _ok(http.post("/v1/admin/network-keys", json={"name": "bench"}, headers=admin))
        window = None
        if with_history:
            first = _now_ms()
            network_headers = {"X-API-Key": network["secret"]}
            held = _ok(
                http.post(
                    "/v1/network/authorizations",
                    json=authorization_body(card["id"], TEMPLATE_AMOUNT, TEMPLATE_MARKER),
                    headers=network_headers,
                )
            )
            if held["response_code"] != "00":
                raise RuntimeError(f"template authorization declined: {held}")
            transaction_id = held["authorization_id"]
            _ok(
                http.post(
                    "/v1/network/clearings",
                    json={
                        "authorization_id": transaction_id,
                        "amount": TEMPLATE_AMOUNT,
                        "network": {"network_transaction_id": f"{TEMPLATE_MARKER}-clearing"},
                    },
                    headers=network_headers,
                )
            )
            window = (first, _now_ms())
    return Template(
        program_id=program_id,
        network_key=network["secret"],
        network_key_id=network["id"],
        product_id=product["id"],
        user_id=user["id"],
        balance_id=balance["id"],
        card_id=card["id"],
        history_window=window,
    )


def _uuid(prefix: str, public_id: str) -> str:
    value = to_uuid(prefix, public_id)
    assert value is not None, public_id
    return str(value)


async def connect(database: Database) -> asyncpg.Connection:
    return await asyncpg.connect(
        database.dsn, server_settings={"application_name": "bench"}, statement_cache_size=0
    )


class Cloner:
    """`INSERT INTO t SELECT <template row, some columns replaced> FROM generate_series`.

    A big series is split between `workers` connections, one statement each at the same time:
    PostgreSQL runs an INSERT on one CPU, and the machine has more.
    """

    def __init__(
        self, conn: asyncpg.Connection, workers: list[asyncpg.Connection] | None = None
    ) -> None:
        self.conn = conn
        self.workers = workers or [conn]

    async def columns(self, table: str) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            table,
        )
        return [row["attname"] for row in rows]

    async def clone(
        self, table: str, template_id: str, count: int, overrides: dict[str, str]
    ) -> float:
        """One statement; `g.n` (1…count) numbers the copies, `t` is the template row."""
        columns = await self.columns(table)
        unknown = set(overrides) - set(columns)
        if unknown:
            raise RuntimeError(f"{table} has no column(s) {sorted(unknown)}: update bench/seed.py")
        values = ", ".join(overrides.get(column, f"t.{column}") for column in columns)
        workers = self.workers if count >= PARALLEL_FROM else self.workers[:1]
        bounds = [count * i // len(workers) for i in range(len(workers) + 1)]
        started = time.monotonic()
        statuses = await asyncio.gather(
            *(
                worker.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} "
                    f"FROM {table} AS t, generate_series({low + 1}, {high}) AS g(n) "
                    f"WHERE t.id = '{template_id}'::uuid"
                )
                for worker, low, high in zip(workers, bounds, bounds[1:], strict=False)
            )
        )
        inserted = sum(int(status.split()[-1]) for status in statuses)
        if inserted != count:
            raise RuntimeError(f"{table}: {inserted} rows inserted, expected {count}")
        return time.monotonic() - started


async def _one(conn: asyncpg.Connection, sql: str, *args: Any) -> str:
    value = await conn.fetchval(sql, *args)
    if value is None:
        raise RuntimeError(f"template row not found: {sql}")
    return str(value)


async def resolve_template(conn: asyncpg.Connection, template: Template) -> None:
    """The ledger rows behind the API objects, which the API does not name."""
    balance = _uuid("bal", template.balance_id)
    template.account_id = await _one(
        conn, "SELECT ledger_account_id FROM balances WHERE id = $1::uuid", balance
    )
    template.reload_transfer_id = await _one(
        conn,
        "SELECT id FROM ledger_transfers WHERE credit_account_id = $1::uuid AND kind = 'single' "
        "ORDER BY id LIMIT 1",
        template.account_id,
    )
    template.partner_credit_account = await _one(
        conn,
        "SELECT debit_account_id FROM ledger_transfers WHERE id = $1::uuid",
        template.reload_transfer_id,
    )


async def network_account(conn: asyncpg.Connection, program_id: str) -> str:
    """The program's `card_network` system account (made by its first authorization)."""
    return await _one(
        conn,
        "SELECT id FROM ledger_accounts WHERE program_id = $1::uuid AND currency = $2 "
        "AND kind = 'card_network' AND owner_id IS NULL",
        _uuid("prg", program_id),
        CURRENCY,
    )


@dataclass
class LoadReport:
    seconds: float
    steps: dict[str, float]


async def bulk_load(
    database: Database,
    template: Template,
    scheme: IdScheme,
    *,
    cards: int,
    fund: int,
    history: int,
    jobs: int,
) -> LoadReport:
    """Each statement commits on its own (several run at once on `jobs` connections): a load
    that fails half-way leaves a half-loaded database, which the bench then throws away."""
    started = time.monotonic()
    steps: dict[str, float] = {}
    workers = [await connect(database) for _ in range(max(1, jobs))]
    conn = workers[0]
    try:
        for worker in workers:
            await worker.execute("SET work_mem = '256MB'; SET maintenance_work_mem = '512MB'")
        await resolve_template(conn, template)
        past = await _history_template(conn, template) if history else None
        cloner = Cloner(conn, workers)
        steps.update(await _cards(cloner, template, past, scheme, cards, fund, history))
        if past is not None:
            steps.update(await _history(cloner, template, past, scheme, cards, history))
        # Steady state, not a freshly loaded heap: statistics for the planner, hint bits and the
        # visibility map set, and the load's dirty pages written out before anything is timed.
        vacuum = time.monotonic()
        tables = list(TABLES)

        async def vacuum_some(worker: asyncpg.Connection) -> None:
            while tables:
                await worker.execute(f"VACUUM (ANALYZE) {tables.pop()}")

        await asyncio.gather(*(vacuum_some(worker) for worker in workers))
        steps["vacuum analyze"] = time.monotonic() - vacuum
        try:
            checkpoint = time.monotonic()
            await conn.execute("CHECKPOINT")
            steps["checkpoint"] = time.monotonic() - checkpoint
        except asyncpg.InsufficientPrivilegeError:
            pass
    finally:
        for worker in workers:
            await worker.close()
    return LoadReport(seconds=time.monotonic() - started, steps=steps)


TABLES = (
    "users",
    "ledger_accounts",
    "balances",
    "ledger_transfers",
    "cards",
    "card_transactions",
    "card_transaction_events",
    "card_spend",
)


async def _cards(
    cloner: Cloner,
    template: Template,
    past: History | None,
    scheme: IdScheme,
    cards: int,
    fund: int,
    history: int,
) -> dict[str, float]:
    user = scheme.uuid_sql(k.USER, "g.n")
    balance = scheme.uuid_sql(k.BALANCE, "g.n")
    account = scheme.uuid_sql(k.ACCOUNT, "g.n")
    # A card's balance: its reload, less what its past transactions did to it.
    totals = dict.fromkeys(TOTALS, "0")
    totals["credits_posted"] = str(fund)
    if past is not None:
        count = _count_sql("g.n", cards, history)
        for column, delta in past.user_account.items():
            if delta:
                totals[column] = f"{totals[column]} + {delta} * {count}"
    steps = {
        "users": await cloner.clone("users", _uuid("usr", template.user_id), cards, {"id": user}),
        "ledger accounts": await cloner.clone(
            "ledger_accounts",
            template.account_id,
            cards,
            {
                "id": account,
                "owner_id": scheme.public_sql("bal", k.BALANCE, "g.n"),
                **totals,
            },
        ),
        "balances": await cloner.clone(
            "balances",
            _uuid("bal", template.balance_id),
            cards,
            {
                "id": balance,
                "owner_id": scheme.public_sql("usr", k.USER, "g.n"),
                "ledger_account_id": account,
            },
        ),
        "reload transfers": await cloner.clone(
            "ledger_transfers",
            template.reload_transfer_id,
            cards,
            {
                "id": scheme.uuid_sql(k.RELOAD, "g.n"),
                "credit_account_id": account,
                "amount": str(fund),
                "key": f"CASE WHEN t.key IS NULL THEN NULL ELSE t.key || ':{scheme.hi_hex}:' "
                "|| g.n END",
            },
        ),
        "cards": await cloner.clone(
            "cards",
            _uuid("card", template.card_id),
            cards,
            {
                "id": scheme.uuid_sql(k.CARD, "g.n"),
                "balance_id": balance,
                "user_id": user,
                # Distinct and unguessable enough for a bench card; authorizations use card_id.
                "pan_hash": f"sha256(convert_to('{scheme.hi_hex}:' || g.n, 'UTF8'))",
                "last4": "lpad((g.n % 10000)::text, 4, '0')",
                "pin_scope": "CASE WHEN t.pin_scope IS NULL THEN NULL ELSE "
                f"{scheme.public_sql('card', k.CARD, 'g.n')} END",
            },
        ),
    }
    await cloner.conn.execute(
        "UPDATE ledger_accounts SET debits_posted = debits_posted + $1 WHERE id = $2::uuid",
        fund * cards,
        template.partner_credit_account,
    )
    return steps


# -- past transactions (--large) --------------------------------------------------------------

# Rows an authorization and its clearing write, in an order that satisfies their foreign keys.
HISTORY_TABLES = ("ledger_transfers", "card_transactions", "card_transaction_events")
PUBLIC_ID = re.compile(r"\b([a-z]+)_([0-9a-hjkmnp-tv-z]{26})\b")
TOTALS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")


@dataclass
class History:
    """The template's settled transaction, as rows to copy and what it did to each account."""

    rows: list[tuple[str, str]]
    user_account: dict[str, int]
    other_accounts: dict[str, dict[str, int]]
    lifetime_counters: list[tuple[str, int, int]]


def _count_sql(n_sql: str, cards: int, history: int) -> str:
    """How many past transactions card n has (transaction x is card ((x - 1) % cards) + 1's)."""
    return f"(CASE WHEN {n_sql} <= {history} THEN ({history} - {n_sql}) / {cards} + 1 ELSE 0 END)"


async def _history_template(conn: asyncpg.Connection, template: Template) -> History:
    assert template.history_window is not None
    first_ms, last_ms = template.history_window
    low, high = uuid.UUID(int=first_ms << 80), uuid.UUID(int=((last_ms + 1) << 80) - 1)
    program = _uuid("prg", template.program_id)
    rows: list[tuple[str, str]] = []
    for table in HISTORY_TABLES:
        # A resolution references its pending transfer: pending and single transfers first.
        order = "(pending_id IS NOT NULL), id" if table == "ledger_transfers" else "id"
        found = await conn.fetch(
            f"SELECT id FROM {table} WHERE program_id = $1::uuid AND id BETWEEN $2 AND $3 "
            f"ORDER BY {order}",
            program,
            low,
            high,
        )
        rows.extend((table, str(row["id"])) for row in found)
    transfers = await conn.fetch(
        "SELECT t.kind, t.debit_account_id, t.credit_account_id, t.amount, "
        "p.debit_account_id AS p_debit, p.credit_account_id AS p_credit, p.amount AS p_amount "
        "FROM ledger_transfers t LEFT JOIN ledger_transfers p ON p.id = t.pending_id "
        "WHERE t.id = ANY($1::uuid[])",
        [row_id for table, row_id in rows if table == "ledger_transfers"],
    )
    # What verify expects of the totals: posted = singles + posts, pending = unresolved holds.
    deltas: dict[str, dict[str, int]] = {}

    def add(account: Any, column: str, amount: int) -> None:
        totals = deltas.setdefault(str(account), dict.fromkeys(TOTALS, 0))
        totals[column] += amount

    for t in transfers:
        if t["kind"] in ("single", "post"):
            add(t["debit_account_id"], "debits_posted", t["amount"])
            add(t["credit_account_id"], "credits_posted", t["amount"])
        if t["kind"] == "pending":
            add(t["debit_account_id"], "debits_pending", t["amount"])
            add(t["credit_account_id"], "credits_pending", t["amount"])
        if t["kind"] in ("post", "void", "expire"):
            add(t["p_debit"], "debits_pending", -t["p_amount"])
            add(t["p_credit"], "credits_pending", -t["p_amount"])
    counters = await conn.fetch(
        "SELECT channel, lifetime_amount AS amount, lifetime_count AS count FROM card_spend "
        "WHERE card_id = $1::uuid",
        _uuid("card", template.card_id),
    )
    return History(
        rows=rows,
        user_account=deltas.pop(template.account_id, dict.fromkeys(TOTALS, 0)),
        other_accounts=deltas,
        lifetime_counters=[(c["channel"], c["amount"], c["count"]) for c in counters],
    )


class HistoryCloner(Cloner):
    """Copies one template row per past transaction, rewriting every reference it holds."""

    def __init__(
        self,
        cloner: Cloner,
        scheme: IdScheme,
        targets: dict[str, tuple[int, str]],
        history: int,
    ) -> None:
        super().__init__(cloner.conn, cloner.workers)
        self.scheme = scheme
        # Template uuid -> (id kind, SQL for its number) of its copy in past transaction g.n.
        self.targets = targets
        self.history = history

    async def unique_text_columns(self, table: str) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indnatts = 1 "
            "AND a.atttypid IN ('text'::regtype, 'varchar'::regtype)",
            table,
        )
        return {row["attname"] for row in rows}

    def _rewrite_text(self, column_sql: str, value: str) -> str | None:
        """Public ids of template rows become their copies'; the template's network ids become
        per-transaction ones. None when nothing in `value` needs rewriting."""
        sql, changed = column_sql, False
        for match in PUBLIC_ID.finditer(value):
            decoded = to_uuid(match[1], match[0])
            if decoded is not None and str(decoded) in self.targets:
                kind, n_sql = self.targets[str(decoded)]
                sql = (
                    f"replace({sql}, '{match[0]}', {self.scheme.public_sql(match[1], kind, n_sql)})"
                )
                changed = True
        if TEMPLATE_MARKER in value:
            sql = f"replace({sql}, '{TEMPLATE_MARKER}', 'hist-{self.scheme.hi_hex}-' || g.n)"
            changed = True
        return sql if changed else None

    async def clone_row(self, table: str, row_id: str) -> float:
        record = await self.conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1::uuid", row_id)
        assert record is not None
        types = {
            row["attname"]: row["type"]
            for row in await self.conn.fetch(
                "SELECT attname, atttypid::regtype::text AS type FROM pg_attribute "
                "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
                table,
            )
        }
        unique = await self.unique_text_columns(table)
        # Spread over the past HISTORY_DAYS, oldest first.
        age = (
            f"interval '1 second' * ({HISTORY_DAYS} * 86400.0 "
            f"* ({self.history} - g.n) / {self.history})"
        )
        overrides: dict[str, str] = {}
        for column, value in record.items():
            if value is None:
                continue
            kind = types[column]
            if kind == "uuid" and str(value) in self.targets:
                target, n_sql = self.targets[str(value)]
                overrides[column] = self.scheme.uuid_sql(target, n_sql)
            elif kind in ("text", "character varying"):
                rewritten = self._rewrite_text(f"t.{column}", value)
                if rewritten is None and column in unique:
                    rewritten = f"t.{column} || ':{self.scheme.hi_hex}:' || g.n"
                if rewritten is not None:
                    overrides[column] = rewritten
            elif kind in ("jsonb", "json"):
                rewritten = self._rewrite_text(f"t.{column}::text", value)
                if rewritten is not None:
                    overrides[column] = f"({rewritten})::{kind}"
            elif kind == "timestamp with time zone":
                overrides[column] = f"t.{column} - {age}"
        return await self.clone(table, row_id, self.history, overrides)


async def _history(
    base: Cloner,
    template: Template,
    past: History,
    scheme: IdScheme,
    cards: int,
    history: int,
) -> dict[str, float]:
    card = f"(((g.n - 1) % {cards}) + 1)"
    targets = {
        _uuid("card", template.card_id): (k.CARD, card),
        _uuid("bal", template.balance_id): (k.BALANCE, card),
        _uuid("usr", template.user_id): (k.USER, card),
        template.account_id: (k.ACCOUNT, card),
    }
    for index, (_, row_id) in enumerate(past.rows):
        targets[row_id] = (k.NEW_KIND_BASE + index, "g.n")
    cloner = HistoryCloner(base, scheme, targets, history)
    conn = base.conn
    steps: dict[str, float] = {}
    for index, (table, row_id) in enumerate(past.rows):
        steps[f"history {table} #{index}"] = await cloner.clone_row(table, row_id)
    started = time.monotonic()
    for account, totals in past.other_accounts.items():
        changes = ", ".join(f"{c} = {c} + {d * history}" for c, d in totals.items() if d)
        if changes:
            await conn.execute(f"UPDATE ledger_accounts SET {changes} WHERE id = $1::uuid", account)
    # The engine's all-time counters for these cards; the current day, week, … start empty.
    count = _count_sql("g.n", cards, history)
    for channel, amount, times in past.lifetime_counters:
        await conn.execute(
            "INSERT INTO card_spend (card_id, channel, lifetime_amount, lifetime_count) "
            f"SELECT {scheme.uuid_sql(k.CARD, 'g.n')}, $1, {amount} * {count}, {times} * {count} "
            f"FROM generate_series(1, {min(cards, history)}) AS g(n)",
            channel,
        )
    steps["history totals and counters"] = time.monotonic() - started
    return steps
