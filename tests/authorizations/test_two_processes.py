"""500 authorizations at once on one card whose balance covers exactly 100 of them, spread over
two `cardcore serve` processes on the same PostgreSQL: only the database can keep them honest."""

import asyncio
import ctypes
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from cardcore.config import Settings
from cardcore.db import create_sessionmaker
from cardcore.ledger.verify import verify
from tests.authorizations.helpers import authorization, balance, make_world

CARDCORE = [sys.executable, "-m", "cardcore"]  # what the `cardcore` script runs
ATTEMPTS, AMOUNT, FUNDS = 500, 100, 10_000


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
async def servers(settings: Settings, tmp_path: Path, count: int) -> AsyncIterator[list[str]]:
    """`count` `cardcore serve` processes, each ready (GET /v1/ping) before this yields their base
    URLs; terminated on the way out. On failure their stderr is printed."""
    processes: list[asyncio.subprocess.Process] = []
    logs: list[Path] = []
    urls: list[str] = []
    try:
        for n in range(count):
            port = _free_port()
            log = tmp_path / f"serve-{n}.stderr"
            logs.append(log)
            with log.open("wb") as stderr:
                processes.append(
                    await asyncio.create_subprocess_exec(
                        *CARDCORE,
                        "serve",
                        "--no-migrate",
                        env=_server_env(settings, tmp_path / f"data-{n}", port),
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
        yield urls
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


async def test_500_authorizations_across_two_server_processes(
    committed_app: FastAPI, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    async with (
        create_sessionmaker(engine)() as session,
        AsyncClient(
            transport=ASGITransport(app=committed_app), base_url="http://cardcore", timeout=60
        ) as local,
    ):
        world = await make_world(local, session, "Two processes", FUNDS)
    card = world.cards[0]

    async with servers(settings, tmp_path, 2) as urls:
        # One connection per request, none kept: a kept one could be closed by the server's
        # keep-alive timeout just as it is reused.
        limits = httpx.Limits(max_connections=ATTEMPTS, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=300, limits=limits) as http:

            async def attempt(n: int) -> dict:  # type: ignore[type-arg]
                response = await http.post(
                    f"{urls[n % 2]}/v1/network/authorizations",
                    json=authorization(card.card_id, AMOUNT, f"two-{n}"),
                    headers=world.network,
                )
                assert response.status_code == 200, response.text
                return response.json()  # type: ignore[no-any-return]

            answers = await asyncio.gather(*(attempt(n) for n in range(ATTEMPTS)))

            codes = Counter(a["response_code"] for a in answers)
            assert codes == {"00": FUNDS // AMOUNT, "51": ATTEMPTS - FUNDS // AMOUNT}
            approved = [a for a in answers if a["response_code"] == "00"]
            assert all(a["approved"] and a["held_amount"] == AMOUNT for a in approved)
            # Each approval saw the balance one step lower than the one before it: every step
            # from 9,900 down to 0 taken exactly once, none below zero.
            seen = sorted(a["available_balance"] for a in approved)
            assert seen == list(range(0, FUNDS, AMOUNT))
            # A decline means nothing was left.
            declined = [a for a in answers if a["response_code"] == "51"]
            assert {
                (a["approved"], a["held_amount"], a["available_balance"]) for a in declined
            } == {(False, 0, 0)}
            assert len({a["authorization_id"] for a in answers}) == ATTEMPTS

            for url in urls:
                response = await http.get(
                    f"{url}/v1/balances/{card.balance_id}", headers=world.partner.headers
                )
                assert response.status_code == 200, response.text
                got = response.json()["data"]
                assert (got["total"], got["available"], got["pending"]) == (FUNDS, 0, FUNDS)

    async with AsyncClient(
        transport=ASGITransport(app=committed_app), base_url="http://cardcore"
    ) as local:
        assert (await balance(local, world.partner, card.balance_id))["available"] == 0
    async with create_sessionmaker(engine)() as session:
        assert await verify(session) == []
