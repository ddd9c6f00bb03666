"""Real `cardcore serve` processes on the test database, for the tests that need more than the
in-process app: several processes at once, or one killed mid-request."""

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from cardcore.config import Settings

CARDCORE = [sys.executable, "-m", "cardcore"]  # what the `cardcore` script runs


@dataclass
class Server:
    url: str
    process: asyncio.subprocess.Process


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, be sent SIGTERM when the test process dies, so a
    killed test run leaves no server behind (the `finally` below cannot run after a SIGKILL)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_env(settings: Settings, data_dir: Path, port: int) -> dict[str, str]:
    """The test database and keys (so a server decrypts what the test made) and no other
    CARDCORE_* setting inherited: no background worker, no migrations (`--no-migrate`), local
    state under a tmp dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARDCORE_", "PROMETHEUS_"))}
    assert settings.database_url, "a server without a URL would start an embedded PostgreSQL"
    assert settings.master_keys, "the server must decrypt what the test encrypted"
    assert settings.cvk_a
    assert settings.cvk_b
    env.update(
        CARDCORE_DATABASE_URL=settings.database_url,
        CARDCORE_MASTER_KEYS=settings.master_keys,
        CARDCORE_CVK_A=settings.cvk_a,
        CARDCORE_CVK_B=settings.cvk_b,
        CARDCORE_DATA_DIR=str(data_dir),
        CARDCORE_HOST="127.0.0.1",
        CARDCORE_PORT=str(port),
        CARDCORE_WORKERS="1",
        CARDCORE_RUN_WORKER="false",
        CARDCORE_LOG_LEVEL="WARNING",
    )
    return env


@asynccontextmanager
async def servers(
    settings: Settings, tmp_path: Path, count: int, name: str = "serve"
) -> AsyncIterator[list[Server]]:
    """`count` `cardcore serve` processes, each ready (GET /v1/ping) before this yields them;
    terminated on the way out. On failure their stderr is printed. `name` keeps the logs and
    data directories of several calls in one test apart."""
    processes: list[asyncio.subprocess.Process] = []
    logs: list[Path] = []
    urls: list[str] = []
    try:
        for n in range(count):
            port = _free_port()
            log = tmp_path / f"{name}-{n}.stderr"
            logs.append(log)
            with log.open("wb") as stderr:
                processes.append(
                    await asyncio.create_subprocess_exec(
                        *CARDCORE,
                        "serve",
                        "--no-migrate",
                        env=_server_env(settings, tmp_path / f"{name}-{n}-data", port),
                        cwd=tmp_path,  # no stray .env from the repository
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=stderr,
                        preexec_fn=_die_with_parent,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        async with httpx.AsyncClient(timeout=2) as http:
            for process, url in zip(processes, urls, strict=True):
                for _ in range(300):
                    assert process.returncode is None, f"{url} exited with {process.returncode}"
                    try:
                        if (await http.get(f"{url}/v1/ping")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"cardcore serve on {url} did not come up")
        yield [Server(url, process) for url, process in zip(urls, processes, strict=True)]
    except BaseException:
        for log in logs:
            if log.exists():
                print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-20_000:]}")
        raise
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await asyncio.wait_for(process.wait(), 10)


def crash(server: Server) -> None:
    """SIGKILL the server and every process under it: no shutdown code runs, open requests and
    transactions are cut off where they stand. With one worker uvicorn serves in the process
    itself; with more, the workers are its children. The parent goes first, so it cannot start
    a worker in place of a killed one."""
    parent = psutil.Process(server.process.pid)
    for process in [parent, *parent.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
