"""`python -m bench`: cardcore's authorization throughput and latency, and its ceilings, in one run.

1. PostgreSQL (a fresh embedded one, or --database-url), migrations, `cardcore serve` with
   --workers processes and no background worker.
2. A program with --cards funded cards (one through the API, the rest cloned in SQL), and in
   --large mode --history past settled transactions; a network API key.
3. Warm-up, then the statements of one authorization captured from the server log and written
   as a pgbench script (bench/authorization.sql).
4. Peak: POST /v1/network/authorizations at --concurrency for --duration (wrk, else
   bench.loadgen). Mixed: authorizations each followed by a clearing, reversal or increment,
   for --mixed-duration. Ceilings, at the same concurrency: GET /v1/ping with the same
   generator, and pgbench running the captured statements. Then an open-loop run at half the
   peak rate. Server and PostgreSQL CPU per request in each measured run.
5. `cardcore ledger verify`, a summary, results in bench/results/; exit 1 on any error.
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import capture, cpu, drivers, seed
from bench import idscheme as k
from bench.idscheme import IdScheme
from bench.server import (
    CARDCORE,
    Database,
    Server,
    cardcore,
    cardcore_env,
    find_pgbench,
    free_port,
    start_database,
    stop_database,
)
from cardcore.embedded_settings import TUNED
from cardcore.kit.crypto import sha256_digest
from cardcore.models.ids import from_uuid, to_uuid

RESULTS = Path(__file__).with_name("results")
STANDARD_CARDS = 10_000
LARGE_CARDS = 1_000_000
LARGE_HISTORY = 5_000_000
# A generator whose ping ceiling is not at least this many times the authorization rate could
# be what limits the authorization rate.
HEADROOM = 3.0
# Messages of the mixed run per second, over all kinds.
MIXED_TARGET = 800
# The PostgreSQL settings printed at the start and in the summary, a line each group; every
# setting cardcore tunes on the embedded server is in one of them.
SETTING_ROWS = (
    ("memory", ("shared_buffers", "wal_buffers", "work_mem")),
    ("maintenance", ("maintenance_work_mem", "max_parallel_maintenance_workers")),
    ("WAL", ("max_wal_size", "min_wal_size", "wal_compression", "wal_init_zero")),
    ("checkpoints", ("checkpoint_timeout", "checkpoint_completion_target")),
    ("durability", ("fsync", "synchronous_commit", "full_page_writes")),
    ("planner", ("effective_cache_size", "random_page_cost")),
    ("I/O, connections", ("effective_io_concurrency", "max_connections")),
    ("parallel query", ("max_parallel_workers_per_gather", "max_parallel_workers")),
)
assert sorted(n for _, names in SETTING_ROWS for n in names) == sorted(TUNED)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="cardcore's authorization benchmark"
    )
    parser.add_argument("--cards", type=int, help=f"funded cards (default {STANDARD_CARDS:,})")
    parser.add_argument("--history", type=int, help="past settled transactions (default 0)")
    parser.add_argument(
        "--large",
        action="store_true",
        help=f"{LARGE_CARDS:,} cards and {LARGE_HISTORY:,} past transactions",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="connections (default 32)")
    parser.add_argument("--duration", type=float, default=30, help="seconds per run (30)")
    parser.add_argument(
        "--mixed-duration",
        type=float,
        help="seconds of the mixed run (default: --duration)",
    )
    parser.add_argument("--warmup", type=float, default=5, help="seconds of warm-up (5)")
    parser.add_argument("--workers", type=int, default=2, help="API processes (default 2)")
    parser.add_argument("--database-url", help="an existing PostgreSQL instead of an embedded one")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="cardcore's data directory (default: a fresh one; with --database-url, "
        "$CARDCORE_DATA_DIR or ./.cardcore, whose master key decrypts that database's secrets)",
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when available (installed with apt-get if missing), else bench.loadgen",
    )
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    parser.add_argument("--fund", type=int, default=1_000_000, help="each card's balance")
    parser.add_argument(
        "--load-jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="connections the bulk load splits each big INSERT between (default: CPUs)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="results of the standard run to compare with (default bench/results/standard.json)",
    )
    parser.add_argument(
        "--verify-timeout",
        type=float,
        default=900,
        help="seconds `cardcore ledger verify` may take (900)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    args.cards = args.cards or (LARGE_CARDS if args.large else STANDARD_CARDS)
    args.history = args.history if args.history is not None else 0
    if args.mixed_duration is None:
        args.mixed_duration = args.duration
    if args.large and not args.history:
        args.history = LARGE_HISTORY
    if args.cards > k.MAX_N or args.history > k.MAX_N:
        parser.error("too many cards or transactions")
    # Past transactions are copies of one of TEMPLATE_AMOUNT; they must leave each card funds
    # for the bench's own authorizations.
    per_card = -(-args.history // args.cards)
    if per_card * seed.TEMPLATE_AMOUNT > args.fund // 2:
        parser.error(f"{per_card} past transactions per card would spend half of --fund")
    return args


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


@dataclass
class Report:
    label: str
    cards: int
    history: int
    concurrency: int
    duration: float
    workers: int
    cpus: int = 0
    # The PostgreSQL settings in effect at the start (cardcore's computed ones on the embedded
    # server), by name.
    postgres_settings: dict[str, str] = field(default_factory=dict)
    load_average: float = 0.0
    load_seconds: float = 0.0
    setup_seconds: float = 0.0
    statements: list[str] = field(default_factory=list)
    statement_count: int = 0
    round_trips: int = 0
    script: str = ""
    peak: drivers.LoadResult | None = None
    mixed: drivers.LoadResult | None = None
    mixed_duration: float = 0.0
    ping: drivers.LoadResult | None = None
    pgbench: drivers.PgbenchResult | None = None
    half: drivers.LoadResult | None = None
    half_rate: float = 0.0
    loadgen_ping: drivers.LoadResult | None = None
    cpu_use: dict[str, cpu.CpuUse] = field(default_factory=dict)
    # Server and PostgreSQL CPU milliseconds per request answered, per measured run.
    cpu_per_request: dict[str, cpu.PerRequest] = field(default_factory=dict)
    verify_ok: bool = False
    verify_output: str = ""
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.pgbench is not None:
            data["pgbench"].pop("output")
        return data


class Generator:
    """The same generator for the peak and the ping ceiling: wrk, or bench.loadgen."""

    def __init__(self, wrk: str | None, port: int) -> None:
        self.wrk = wrk
        self.port = port
        self.name = "wrk" if wrk else "bench.loadgen"

    def authorize(
        self, key: str, card_head: str, cards: int, concurrency: int, duration: float
    ) -> drivers.LoadResult:
        return self._cards("auth", key, card_head, cards, concurrency, duration)

    def mixed(
        self, key: str, card_head: str, cards: int, concurrency: int, duration: float
    ) -> drivers.LoadResult:
        """Authorizations, each approved one followed by a clearing, reversal or increment."""
        return self._cards("mixed", key, card_head, cards, concurrency, duration)

    def _cards(
        self, mode: str, key: str, card_head: str, cards: int, concurrency: int, duration: float
    ) -> drivers.LoadResult:
        """A run of messages on random bench cards: wrk's script for `mode`, or bench.loadgen."""
        tag = f"{mode[0]}{secrets.token_hex(4)}"
        if self.wrk:
            return drivers.run_wrk(
                self.wrk,
                f"http://127.0.0.1:{self.port}",
                {"auth": "authorize.lua", "mixed": "mixed.lua"}[mode],
                [key, card_head, str(cards), tag],
                concurrency=concurrency,
                duration=duration,
                threads=2,
            )
        return drivers.run_loadgen(
            self.port,
            mode=mode,
            concurrency=concurrency,
            duration=duration,
            key=key,
            card_head=card_head,
            cards=cards,
            tag=tag,
        )

    def ping(self, concurrency: int, duration: float) -> drivers.LoadResult:
        if self.wrk:
            return drivers.run_wrk(
                self.wrk,
                f"http://127.0.0.1:{self.port}/v1/ping",
                "ping.lua",
                [],
                concurrency=concurrency,
                duration=duration,
                threads=2,
            )
        return drivers.run_loadgen(
            self.port, mode="ping", concurrency=concurrency, duration=duration
        )


def _uuid(prefix: str, public_id: str) -> uuid.UUID:
    value = to_uuid(prefix, public_id)
    assert value is not None
    return value


def pgbench_defines(
    names: list[str],
    scheme: IdScheme,
    cards: int,
    constants: list[capture.Constant],
    values: dict[str, str],
) -> dict[str, str]:
    by_name = {c.name: c for c in constants}
    defines: dict[str, str] = {}
    for name in names:
        if name in values:
            defines[name] = values[name]
        elif name == "cards":
            defines[name] = str(cards)
        elif name == "hi":
            defines[name] = scheme.hi_hex
        elif name.startswith("h_"):
            _, prefix, kind = name.split("_")
            defines[name] = scheme.head(prefix, int(kind))
        elif name in by_name:
            defines[name] = str(by_name[name].value)
        elif name.endswith("_pub") and name.removesuffix("_pub") in by_name:
            constant = by_name[name.removesuffix("_pub")]
            defines[name] = from_uuid(constant.prefix, constant.value)
        else:
            raise RuntimeError(f"bench/authorization.sql needs -D {name}, which the bench lacks")
    return defines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(args)
    try:
        run.prepare()
        run.measure()
        run.verify()
    except Exception as exc:
        run.report.problems.append(f"{type(exc).__name__}: {exc}")
        if run.server is not None:
            say("server log tail:\n" + run.server.log_tail(3000))
        raise
    finally:
        run.close()
    return _summarize(run.report, args)


class Run:
    """One benchmark: the phases of the module docstring, in order."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        label = "large" if args.large else "standard" if args.cards == STANDARD_CARDS else "custom"
        self.report = Report(
            label=label,
            cards=args.cards,
            history=args.history,
            concurrency=args.concurrency,
            duration=args.duration,
            workers=args.workers,
            cpus=os.cpu_count() or 0,
            load_average=os.getloadavg()[0],
        )
        self.started = time.monotonic()
        self.work = Path(tempfile.mkdtemp(prefix="cardcore-bench-"))
        self.data_dir = args.data_dir or self.work / "data"
        if args.database_url and not args.data_dir:
            self.data_dir = Path(os.environ.get("CARDCORE_DATA_DIR", ".cardcore")).resolve()
        self.database: Database | None = None
        self.server: Server | None = None

    def prepare(self) -> None:
        """PostgreSQL, cardcore serving, the cards, a warm-up and the capture."""
        args, report = self.args, self.report
        if report.load_average > 0.5:
            say(
                f"warning: load average {report.load_average:.1f} before starting: other "
                "processes are using the CPUs that server, database and generators share, so "
                "the figures will be low"
            )
        say(f"work directory {self.work}")
        self.database = start_database(self.data_dir, args.database_url)
        say("PostgreSQL: " + ("--database-url" if args.database_url else "embedded, fresh"))
        report.postgres_settings = _postgres_settings(self.database)
        for group, values in _setting_rows(report):
            say(f"  {group}: {values}")
        self.port = free_port()
        self.env = cardcore_env(self.database, self.data_dir, self.port, args.workers)
        cardcore(self.env, "migrate")
        self.server = Server(self.env, self.work / "server.log")
        self.server.start()
        say(f"cardcore serve: {args.workers} workers on {self.server.base_url}")

        wrk = None if args.generator == "python" else drivers.ensure_wrk(not args.no_install)
        if args.generator == "wrk" and wrk is None:
            raise RuntimeError("--generator wrk, but wrk is not installed")
        self.generator = Generator(wrk, self.port)

        self.template = seed.make_template(self.server, args.fund, args.cards, args.history > 0)
        self.scheme = IdScheme.fresh()
        say(f"loading {args.cards:,} cards and {args.history:,} past transactions …")
        load = asyncio.run(
            seed.bulk_load(
                self.database,
                self.template,
                self.scheme,
                cards=args.cards,
                fund=args.fund,
                history=args.history,
                jobs=args.load_jobs,
            )
        )
        report.load_seconds = load.seconds
        say(f"bulk load took {load.seconds:.1f} s")
        for step, seconds in load.steps.items():
            if seconds >= 1:
                say(f"  {step}: {seconds:.1f} s")
        self.card_head = self.scheme.head("card", k.CARD)
        self.meter = cpu.CpuMeter(os.getpgid(self.server.pid), _postmaster(self.database))

        if args.warmup > 0:
            warm = self.authorize(args.warmup)
            say(
                f"warm-up (not counted): {warm.rps:.0f} authorizations/s, {warm.approved} "
                f"approved, {warm.declined} declined, {warm.http_errors} HTTP errors, "
                f"{warm.errors - warm.http_errors} timeouts or socket errors"
            )
        self.script = _capture_script(
            args, self.database, self.server, self.template, self.scheme, report, self.work
        )
        report.setup_seconds = time.monotonic() - self.started

    def authorize(self, duration: float) -> drivers.LoadResult:
        return self.generator.authorize(
            self.template.network_key,
            self.card_head,
            self.args.cards,
            self.args.concurrency,
            duration,
        )

    def measured(self, name: str, run: Callable[[], drivers.LoadResult]) -> drivers.LoadResult:
        """`run`, the CPUs each side kept busy while it ran, and the server's and PostgreSQL's
        CPU per request it answered. The two snapshots bracket the generator's process and
        nothing else: its start and exit add a few idle milliseconds, no requests."""
        before = self.meter.snapshot()
        result = run()
        after = self.meter.snapshot()
        use = self.report.cpu_use[name] = cpu.between(before, after)
        per_request = self.report.cpu_per_request[name] = use.per_request(result.requests)
        say(f"  CPUs busy: {use.describe()}")
        say(f"  CPU per request: {per_request.describe()} ({result.requests:,} requests)")
        return result

    def measure(self) -> None:
        """Peak, the ping and pgbench ceilings, half peak, and bench.loadgen's own ceiling."""
        args, report = self.args, self.report
        assert self.database is not None
        say(f"peak: {self.generator.name}, {args.concurrency} connections, {args.duration:.0f} s")
        report.peak = self.measured("peak", lambda: self.authorize(args.duration))
        _show("authorizations", report.peak)

        report.mixed_duration = args.mixed_duration
        say(
            f"mixed: {self.generator.name}, {args.concurrency} connections, "
            f"{args.mixed_duration:.0f} s; each authorization followed by a clearing (8 in 10), "
            "reversal (1 in 10) or increment (1 in 10)"
        )
        report.mixed = self.measured(
            "mixed",
            lambda: self.generator.mixed(
                self.template.network_key,
                self.card_head,
                args.cards,
                args.concurrency,
                args.mixed_duration,
            ),
        )
        _show("messages", report.mixed)
        for kind, counts in report.mixed.by_kind():
            say(
                f"    {kind}: {counts['approved']} approved, {counts['declined']} declined, "
                f"{counts['failed']} HTTP errors"
            )

        say("ceiling: GET /v1/ping, same generator and concurrency")
        report.ping = self.measured(
            "ping", lambda: self.generator.ping(args.concurrency, args.duration)
        )
        _show("ping", report.ping)

        binary = find_pgbench(_server_major(self.database))
        say(f"ceiling: pgbench ({binary}) running the captured statements")
        report.pgbench = drivers.run_pgbench(
            binary,
            self.database.dsn,
            self.script.path,
            self.script.defines,
            concurrency=args.concurrency,
            duration=args.duration,
            work_dir=self.work,
        )
        (self.work / "pgbench.out").write_text(report.pgbench.output)
        say(
            f"  pgbench: {report.pgbench.tps:.0f} tps, p50 {report.pgbench.p50_ms:.1f} ms, "
            f"p99 {report.pgbench.p99_ms:.1f} ms, {report.pgbench.failed} failed; slowest:"
        )
        for latency, statement in report.pgbench.slowest():
            say(f"    {latency:7.3f} ms  {statement[:100]}")
        if not report.pgbench.ok:
            say(report.pgbench.output[-3000:])

        report.half_rate = max(1.0, report.peak.rps / 2)
        say(f"half peak: bench.loadgen, open loop at {report.half_rate:.0f}/s")
        report.half = self.measured(
            "half",
            lambda: drivers.run_loadgen(
                self.port,
                mode="auth",
                concurrency=args.concurrency,
                duration=args.duration,
                rate=report.half_rate,
                key=self.template.network_key,
                card_head=self.card_head,
                cards=args.cards,
                tag=f"h{secrets.token_hex(4)}",
            ),
        )
        _show("authorizations", report.half)

        say("bench.loadgen's own ceiling: GET /v1/ping, closed loop")
        report.loadgen_ping = drivers.run_loadgen(
            self.port, mode="ping", concurrency=args.concurrency, duration=min(args.duration, 10)
        )
        _show("ping", report.loadgen_ping)

    def verify(self) -> None:
        assert self.server is not None
        self.server.stop()
        say("cardcore ledger verify …")
        self.report.verify_ok, self.report.verify_output = _verify(
            self.env, self.args.verify_timeout
        )
        say(self.report.verify_output.strip())

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.database is not None:
            stop_database(self.database)
        if self.args.keep:
            say(f"kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


@dataclass
class Script:
    path: Path
    defines: dict[str, str]


def _capture_script(
    args: argparse.Namespace,
    database: Database,
    server: Server,
    template: seed.Template,
    scheme: IdScheme,
    report: Report,
    work: Path,
) -> Script:
    """Capture one authorization's statements; the pgbench script made from them (or, when the
    server's log cannot be read, the one an earlier run made)."""

    async def network_account() -> str:
        conn = await seed.connect(database)
        try:
            return await seed.network_account(conn, template.program_id)
        finally:
            await conn.close()

    constants = [
        capture.Constant("program", "prg", _uuid("prg", template.program_id)),
        capture.Constant("network_key", "key", _uuid("key", template.network_key_id)),
        # The card's product: the authorization reads the fee schedules in effect for it.
        capture.Constant("product", "prd", _uuid("prd", template.product_id)),
        capture.Constant("network_account", "lac", uuid.UUID(asyncio.run(network_account()))),
    ]
    # How the log shows the network key's hash, which the key lookup is by.
    logged_hash = "\\x" + sha256_digest(template.network_key).hex()
    card_n = args.cards // 2 + 1
    captured = asyncio.run(
        capture.capture(
            database,
            server.base_url,
            template.network_key,
            scheme.public("card", k.CARD, card_n),
            card_n,
        )
    )
    if captured is None:
        say("no server log to read (--database-url): using bench/authorization.sql as it is")
        text = capture.SCRIPT.read_text()
        path = capture.SCRIPT
        counted = re.search(r"^-- (\d+) statements, (\d+) round trips", text, re.MULTILINE)
        if counted:
            report.statement_count, report.round_trips = int(counted[1]), int(counted[2])
            say(f"it holds {counted[1]} statements of an earlier capture")
    else:
        builder = capture.ScriptBuilder(
            scheme=scheme,
            card_n=card_n,
            started_ms=captured.started_ms,
            ntx=captured.ntx,
            constants=constants,
            values={logged_hash: "network_key_hash"},
        )
        text = builder.script(captured.statements)
        path = work / "authorization.sql"
        path.write_text(text)
        report.round_trips = capture.round_trips(captured.statements)
        report.statement_count = len(captured.statements)
        report.statements = [" ".join(s.sql.split()) for s in captured.statements]
        if builder.unknown:
            say(
                "captured statements hold ids the bench cannot name "
                f"({', '.join(sorted(builder.unknown))}): the script is for this run only"
            )
        else:
            # The committed script is the fallback for runs that cannot capture; it is rewritten
            # when the statements change, not for every new id or amount in them.
            before = capture.SCRIPT.read_text() if capture.SCRIPT.exists() else ""
            if capture.header_field(before, "shape") != capture.header_field(text, "shape"):
                capture.SCRIPT.write_text(text)
                say("the statements changed: bench/authorization.sql rewritten")
        say(
            f"one authorization ran {len(captured.statements)} statements "
            f"({report.round_trips} round trips):"
        )
        for number, statement in enumerate(report.statements, 1):
            say(f"  {number:2}. {statement[:110]}")
    report.script = str(path)
    defines = pgbench_defines(
        capture.script_defines(text),
        scheme,
        args.cards,
        constants,
        {"network_key_hash": logged_hash},
    )
    return Script(path=path, defines=defines)


def _postmaster(database: Database) -> int | None:
    """The embedded server's main process (the first line of postmaster.pid)."""
    if database.pgdata is None:
        return None
    return int((database.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])


def _postgres_settings(database: Database) -> dict[str, str]:
    """What the server runs with: the settings cardcore tunes on the embedded server, and the
    ones that keep commits durable."""

    async def fetch() -> dict[str, str]:
        conn = await seed.connect(database)
        try:
            rows = await conn.fetch(
                "SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name",
                list(TUNED),
            )
            return {row["name"]: row["value"] for row in rows}
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _setting_rows(report: Report) -> list[tuple[str, str]]:
    return [
        (group, " ".join(f"{n}={report.postgres_settings.get(n, '?')}" for n in names))
        for group, names in SETTING_ROWS
    ]


def _server_major(database: Database) -> int:
    async def version() -> int:
        conn = await seed.connect(database)
        try:
            return int(await conn.fetchval("SHOW server_version_num")) // 10_000
        finally:
            await conn.close()

    return asyncio.run(version())


def _verify(env: dict[str, str], timeout: float) -> tuple[bool, str]:
    # An offline check over every transfer: the API's statement timeout is not meant for it.
    env = {**env, "CARDCORE_DB_STATEMENT_TIMEOUT_MS": "0"}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [CARDCORE, "ledger", "verify"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False, f"ledger verify did not finish in {timeout:.0f} s (--verify-timeout)"
    say(f"ledger verify took {time.monotonic() - started:.0f} s")
    output = done.stdout + done.stderr
    if done.returncode != 0 and "ledger NOT consistent" not in output:
        # It did not get to an answer: the end of its traceback says why.
        output = "ledger verify did not finish:\n" + "\n".join(output.splitlines()[-5:])
    return done.returncode == 0, output


def _show(what: str, result: drivers.LoadResult) -> None:
    say(
        f"  {result.rps:.0f} {what}/s ({result.approved} approved, {result.declined} declined, "
        f"{result.errors} errors); p50 {result.p50_ms:.1f} ms, p95 {result.p95_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms"
    )


def _summarize(report: Report, args: argparse.Namespace) -> int:
    assert report.peak is not None
    assert report.mixed is not None
    assert report.ping is not None
    assert report.pgbench is not None
    assert report.half is not None
    assert report.loadgen_ping is not None
    peak, mixed, ping, pg, half, own = (
        report.peak,
        report.mixed,
        report.ping,
        report.pgbench,
        report.half,
        report.loadgen_ping,
    )
    RESULTS.mkdir(exist_ok=True)
    baseline_path = args.baseline or RESULTS / "standard.json"
    baseline = None
    if report.label == "large" and baseline_path.exists():
        baseline = json.loads(baseline_path.read_text())
    (RESULTS / f"{report.label}.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")

    rows: list[tuple[str, str, str]] = [
        (
            "machine",
            f"{report.cpus} CPUs, load average {report.load_average:.1f} at start",
            "shared by server, PostgreSQL and generator",
        ),
        *((f"PostgreSQL {group}", values, "") for group, values in _setting_rows(report)),
        ("cards / past transactions", f"{report.cards:,} / {report.history:,}", ""),
        (
            "bulk load / all set-up",
            f"{report.load_seconds:.1f} s / {report.setup_seconds:.1f} s",
            "",
        ),
        (
            "statements per authorization",
            f"{report.statement_count} ({report.round_trips} round trips)"
            + ("" if report.statements else ", from an earlier capture"),
            "",
        ),
        (
            f"authorizations ({peak.generator}, c={report.concurrency})",
            f"{peak.rps:,.0f}/s, {peak.approved_rps:,.0f} approved/s",
            _target(peak.approved_rps >= 1000, "≥ 1,000 approved/s"),
        ),
        (
            "  approved / declined / errors",
            f"{peak.approved} / {peak.declined} / {peak.errors}",
            "",
        ),
        ("  latency p50 / p95 / p99", _latency(peak), ""),
        ("  CPUs busy", _cpu(report, "peak"), ""),
        *_cpu_per_request(report, "peak", "authorization"),
        (
            f"mixed ({mixed.generator}, c={report.concurrency}, {report.mixed_duration:.0f} s)",
            f"{mixed.rps:,.0f} messages/s, {_ratio(mixed.rps, peak.rps):.2f}× the authorizations/s",
            _target(mixed.rps >= MIXED_TARGET, f"≥ {MIXED_TARGET:,} messages/s"),
        ),
        *_kinds(mixed),
        ("  latency p50 / p95 / p99", _latency(mixed), ""),
        ("  CPUs busy", _cpu(report, "mixed"), ""),
        *_cpu_per_request(report, "mixed", "message"),
        ("ping ceiling (same generator)", f"{ping.rps:,.0f}/s, p99 {ping.p99_ms:.1f} ms", ""),
        ("  CPUs busy", _cpu(report, "ping"), ""),
        *_cpu_per_request(report, "ping", "ping")[:1],
        ("pgbench ceiling (same statements)", f"{pg.tps:,.0f} tps, p99 {pg.p99_ms:.1f} ms", ""),
        ("auth/s ÷ ping/s", f"{_ratio(peak.rps, ping.rps):.2f}", ""),
        (
            "auth/s ÷ pgbench tps",
            f"{_ratio(peak.rps, pg.tps):.2f}",
            _target(_ratio(peak.rps, pg.tps) >= 0.5, "≥ 0.5"),
        ),
        (
            f"half peak, open loop at {report.half_rate:,.0f}/s",
            f"{half.rps:,.0f}/s, errors {half.errors}",
            "",
        ),
        (
            "  latency p50 / p95 / p99",
            _latency(half),
            _target(half.p99_ms < 25, "p99 < 25 ms"),
        ),
        ("  CPUs busy", _cpu(report, "half"), ""),
        *_cpu_per_request(report, "half", "authorization"),
        ("bench.loadgen ping ceiling", f"{own.rps:,.0f}/s", ""),
        ("ledger verify", "clean" if report.verify_ok else "FAILED", ""),
    ]
    if baseline is not None:
        for name, key in (("peak", "peak"), ("half-peak", "half")):
            before = (baseline.get(key) or {}).get("p99_ms")
            now = getattr(report, key).p99_ms
            if before:
                rows.append(
                    (
                        f"{name} p99 vs {baseline['cards']:,}-card run",
                        f"{now:.1f} ms vs {before:.1f} ms = {now / before:.2f}×",
                        _target(now / before <= 1.5, "≤ 1.5×"),
                    )
                )
    elif report.label == "large":
        rows.append(("p99 vs standard run", f"no {baseline_path} (run `make bench` first)", ""))

    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print()
    print(f"cardcore authorization benchmark — {report.label}")
    print("-" * (width + value_width + 20))
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {target}")
    print()

    problems = list(report.problems)
    for what, result in (("peak", peak), ("mixed", mixed), ("half peak", half), ("ping", ping)):
        if result.errors:
            problems.append(f"{what}: {result.errors} HTTP errors, timeouts or socket errors")
    for what, result in (("peak", peak), ("mixed", mixed), ("half peak", half)):
        if result.declined or not result.approved:
            problems.append(f"{what}: {result.declined} declined, {result.approved} approved")
    followed = sum(c["approved"] for kind, c in mixed.kinds.items() if kind != "authorization")
    if mixed.approved and not followed:
        problems.append("mixed: authorizations approved, but no follow-up message was")
    if not pg.ok:
        problems.append(f"pgbench: exit {pg.returncode}, {pg.failed} failed transactions")
    if not report.verify_ok:
        problems.append("cardcore ledger verify failed:\n" + report.verify_output)
    generator_headroom = ping.rps / peak.rps if peak.rps else 0
    if generator_headroom < HEADROOM:
        say(
            f"warning: the ping ceiling is only {generator_headroom:.1f}× the authorization "
            "rate; the generator may be what limits it"
        )
    for problem in problems:
        say(f"FAILED: {problem}")
    return 1 if problems else 0


def _cpu(report: Report, run: str) -> str:
    use = report.cpu_use.get(run)
    return use.describe() if use else "?"


def _cpu_per_request(report: Report, run: str, noun: str) -> list[tuple[str, str, str]]:
    """The server's and PostgreSQL's CPU milliseconds per request of a run. The network
    messages' target is a note, not a threshold: the figure depends on the machine's CPUs."""
    per = report.cpu_per_request.get(run)
    if per is None:
        return []
    note = "" if run == "ping" else "target ≈ 1 ms"
    return [
        (f"  server CPU per {noun}", f"{per.server_ms:.2f} ms", note),
        (f"  PostgreSQL CPU per {noun}", f"{per.postgres_ms:.2f} ms", ""),
    ]


def _kinds(result: drivers.LoadResult) -> list[tuple[str, str, str]]:
    """One row per kind of message: its share of the messages and its outcomes."""
    rows = []
    for kind, counts in result.by_kind():
        answered = sum(counts.values())
        rows.append(
            (
                f"  {kind}s: approved / declined / errors",
                f"{counts['approved']} / {counts['declined']} / {counts['failed']}"
                f" ({_ratio(answered, result.requests):.0%} of messages)",
                "",
            )
        )
    return rows


def _latency(result: drivers.LoadResult) -> str:
    return f"{result.p50_ms:.1f} / {result.p95_ms:.1f} / {result.p99_ms:.1f} ms"


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _target(met: bool, text: str) -> str:
    return f"{'met' if met else 'MISSED'}: {text}"
