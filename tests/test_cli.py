"""The `cardcore` command, run as a partner's operator would run it."""

import asyncio
import fcntl
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from cardcore.config import Settings
from cardcore.db import forget_dead_processes, postgres_processes
from tests.factories import make_partner

# Every test runs `cardcore` processes, the later ones `serve` and its embedded PostgreSQL.
pytestmark = pytest.mark.slow

CARDCORE = [sys.executable, "-m", "cardcore"]


async def run_cli(*args: str, env: dict[str, str], check: bool = True) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CARDCORE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    if check:
        assert process.returncode == 0, err.decode()
    return process.returncode or 0, out.decode(), err.decode()


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDCORE_")}
    env.update(overrides)
    return env


async def test_bootstrap_prints_one_json_object_whose_key_works(
    committed_app: FastAPI, settings: Settings
) -> None:
    env = _env(CARDCORE_DATABASE_URL=settings.database_url or "")
    _, out, _ = await run_cli("bootstrap", "--program", "Acme", "--json", env=env)
    result = json.loads(out)  # exactly one JSON document on stdout, nothing else
    assert set(result) == {"program_id", "mode", "api_key", "admin_email", "admin_password"}
    assert result["program_id"].startswith("prg_")
    assert result["mode"] == "live"
    assert result["api_key"].startswith("ck_live_")

    async with AsyncClient(transport=ASGITransport(app=committed_app), base_url="http://t") as c:
        response = await c.get("/v1/events", headers={"X-API-Key": result["api_key"]})
        assert response.status_code == 200
        assert [e["type"] for e in response.json()["data"]] == ["api_key.created"]

    # Every call makes a new program; a given password is used as given.
    _, again, _ = await run_cli(
        "bootstrap", "--program", "Acme", "--admin-password", "s3cret-pass", "--json", env=env
    )
    second = json.loads(again)
    assert second["program_id"] != result["program_id"]
    assert second["admin_password"] == "s3cret-pass"


async def test_bootstrap_test_makes_a_test_program_whose_keys_say_so(
    committed_app: FastAPI, settings: Settings
) -> None:
    env = _env(CARDCORE_DATABASE_URL=settings.database_url or "")
    _, out, _ = await run_cli("bootstrap", "--program", "Sandbox", "--test", "--json", env=env)
    result = json.loads(out)
    assert result["mode"] == "test"
    assert result["api_key"].startswith("ck_test_")
    _, more, _ = await run_cli(
        "api-keys", "create", "--program", result["program_id"], "--json", env=env
    )
    assert json.loads(more)["api_key"].startswith("ck_test_")

    async with AsyncClient(transport=ASGITransport(app=committed_app), base_url="http://t") as c:
        headers = {"X-API-Key": result["api_key"]}
        program = (await c.get("/v1/program", headers=headers)).json()["data"]
        assert program["mode"] == "test"
        # The simulation routes are open to it: an unknown hold is simply not found.
        expired = await c.post(
            "/v1/simulate/expire", json={"authorization_id": "ctx_unknown"}, headers=headers
        )
        assert expired.status_code == 404, expired.text


async def test_a_removed_setting_stops_every_command_with_what_to_do() -> None:
    env = _env(
        CARDCORE_SANDBOX="true",
        CARDCORE_MASTER_KEYS="k:bm90LWEtcmVhbC1rZXk=",
        # Nothing listens there: were the setting ignored, the command would fail otherwise.
        CARDCORE_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none",
    )
    code, out, err = await run_cli("ledger", "verify", env=env, check=False)
    assert code == 2
    assert "CARDCORE_SANDBOX is no longer a setting" in err
    assert "cardcore bootstrap --test" in err
    assert "Traceback" not in err
    assert "bm90LWEt" not in out + err, "a setting's value is never printed"


async def test_api_keys_create_list_revoke(committed_app: FastAPI, settings: Settings) -> None:
    env = _env(CARDCORE_DATABASE_URL=settings.database_url or "")
    program_id = json.loads((await run_cli("bootstrap", "--json", env=env))[1])["program_id"]
    created = json.loads(
        (await run_cli("api-keys", "create", "--program", program_id, "--json", env=env))[1]
    )
    listed = json.loads(
        (await run_cli("api-keys", "list", "--program", program_id, "--json", env=env))[1]
    )
    assert created["id"] in {row["id"] for row in listed}
    assert all("api_key" not in row and "secret" not in row for row in listed)

    await run_cli("api-keys", "revoke", created["id"], env=env)
    async with AsyncClient(transport=ASGITransport(app=committed_app), base_url="http://t") as c:
        response = await c.get("/v1/program", headers={"X-API-Key": created["api_key"]})
    assert response.status_code == 401

    code, _, err = await run_cli("api-keys", "list", "--program", "nonsense", env=env, check=False)
    assert code != 0
    assert "not a program id" in err


async def test_credentials_and_network_keys_from_the_cli(
    committed_app: FastAPI, settings: Settings
) -> None:
    env = _env(
        CARDCORE_DATABASE_URL=settings.database_url or "",
        CARDCORE_MASTER_KEYS=settings.master_keys or "",
    )
    program_id = json.loads((await run_cli("bootstrap", "--json", env=env))[1])["program_id"]
    client = json.loads(
        (
            await run_cli(
                "credentials",
                "create",
                "--program",
                program_id,
                "--type",
                "client_credentials",
                "--json",
                env=env,
            )
        )[1]
    )
    network = json.loads(
        (
            await run_cli(
                "api-keys",
                "create",
                "--program",
                program_id,
                "--kind",
                "network",
                "--json",
                env=env,
            )
        )[1]
    )
    async with AsyncClient(transport=ASGITransport(app=committed_app), base_url="http://t") as c:
        token = await c.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert token.status_code == 200, token.text
        old_access = token.json()["access_token"]
        await run_cli("keys", "rotate-jwt", env=env)
        # The old token still verifies; a new one is signed by the new key.
        headers = {"Authorization": f"Bearer {old_access}"}
        assert (await c.get("/v1/program", headers=headers)).status_code == 200
        committed_app.state.token_keys.keys.forget()  # as if a minute had passed
        again = await c.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        )
        new_kid = _kid(again.json()["access_token"])
        assert new_kid != _kid(old_access)
        new_headers = {"Authorization": f"Bearer {again.json()['access_token']}"}
        assert (await c.get("/v1/program", headers=new_headers)).status_code == 200
        network_call = await c.get("/v1/events", headers={"X-API-Key": network["api_key"]})
        assert network_call.status_code == 403


def _kid(token: str) -> str:
    import base64

    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


async def test_ledger_verify_exit_codes(
    committed_app: FastAPI, settings: Settings, engine: AsyncEngine
) -> None:
    from sqlalchemy import update

    from cardcore.db import create_sessionmaker
    from cardcore.ledger import service as ledger
    from cardcore.models import LedgerAccount

    env = _env(CARDCORE_DATABASE_URL=settings.database_url or "")
    async with create_sessionmaker(engine)() as session:
        partner = await make_partner(session, "Books")
        funding = await ledger.system_account(
            session, program_id=partner.program_id, currency="EUR", kind="funding"
        )
        account = await ledger.open_account(
            session,
            program_id=partner.program_id,
            currency="EUR",
            kind="user_balance",
            owner_id="x",
            no_overdraft=True,
        )
        await ledger.transfer(
            session,
            program_id=partner.program_id,
            debit_account_id=funding.id,
            credit_account_id=account.id,
            amount=500,
            currency="EUR",
            code="t",
        )
        await session.commit()
    code, out, _ = await run_cli("ledger", "verify", env=env)
    assert code == 0
    assert "ledger consistent" in out

    async with create_sessionmaker(engine)() as session:
        await session.execute(
            update(LedgerAccount)
            .where(LedgerAccount.id == account.id)
            .values(credits_posted=LedgerAccount.credits_posted + 1)
        )
        await session.commit()
    code, out, err = await run_cli("ledger", "verify", env=env, check=False)
    assert code == 1
    assert account.id in out
    assert "NOT consistent" in err


# --- `cardcore serve` and the embedded PostgreSQL it starts --------------------------------------
# These run real processes. One data directory serves the whole group (initdb once); every test
# leaves PostgreSQL stopped, which is what each of them checks anyway.


@pytest.fixture(scope="module")
def embedded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedded")


_spawned: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
async def _no_process_outlives_its_test() -> AsyncIterator[None]:
    """A failing test must not leave a server (and its PostgreSQL) running: SIGTERM stops both."""
    yield
    while _spawned:
        process = _spawned.pop()
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.communicate(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_process_starting_the_embedded_server_waits_for_one_already_starting(
    tmp_path: Path,
) -> None:
    """`make test`'s workers (or `serve` beside a CLI command) may all find no server yet; two
    creating it at once collided on its fresh directory. While one holds the data directory's
    start lock, another waits, then attaches to the server the first made."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    script = (
        "import sys; from pathlib import Path; "
        "from cardcore.db import start_embedded_postgres, release_embedded_postgres; "
        "start_embedded_postgres(Path(sys.argv[1])); release_embedded_postgres()"
    )
    # A local lock file: opening it does not block the loop in any way that matters here.
    with open(fresh / ".embedded-postgres.lock", "a") as lock:  # noqa: ASYNC230
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a process in the middle of starting it
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, str(fresh), env=_env(), stderr=asyncio.subprocess.PIPE
        )
        await asyncio.sleep(5)
        assert process.returncode is None, "it started while another process was starting"
        assert not (fresh / "postgres").exists()
    _, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    assert not (fresh / "postgres" / "postmaster.pid").exists(), "the last one out stops it"


async def test_embedded_postgres_serves_and_cli_shares_it(embedded_dir: Path) -> None:
    """No database URL: serve starts the embedded server, a CLI command attaches to the running
    one without stopping it, and stopping serve stops the server."""
    env = _env(CARDCORE_DATA_DIR=str(embedded_dir), CARDCORE_LOG_LEVEL="WARNING")
    boot = json.loads((await run_cli("bootstrap", "--json", env=env))[1])
    pid_file = embedded_dir / "postgres" / "postmaster.pid"
    assert not pid_file.exists(), "bootstrap alone must leave no server running"

    port = _free_port()
    serve = await asyncio.create_subprocess_exec(
        *CARDCORE,
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(150):
                try:
                    if (await http.get("/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("cardcore serve did not become ready")
            listed = json.loads(
                (
                    await run_cli(
                        "api-keys", "list", "--program", boot["program_id"], "--json", env=env
                    )
                )[1]
            )
            assert len(listed) == 1
            # The CLI has exited; the server it attached to must still be serving.
            response = await http.get("/v1/events", headers={"X-API-Key": boot["api_key"]})
            assert response.status_code == 200
            assert (await http.get("/docs")).status_code == 200
    finally:
        serve.send_signal(signal.SIGINT)
        await asyncio.wait_for(serve.wait(), 30)
    for _ in range(50):
        if not pid_file.exists():
            break
        await asyncio.sleep(0.2)
    assert not pid_file.exists(), "stopping serve must stop the embedded PostgreSQL"


def _embedded_env(data_dir: Path) -> dict[str, str]:
    # The worker beside the API adds nothing here, and a second of polling to each shutdown.
    return _env(
        CARDCORE_DATA_DIR=str(data_dir), CARDCORE_LOG_LEVEL="WARNING", CARDCORE_RUN_WORKER="false"
    )


def _postmaster(data_dir: Path) -> psutil.Process | None:
    """The live PostgreSQL server on `data_dir`, if any."""
    pid_file = data_dir / "postgres" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        if process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE:
            return process
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
        pass
    return None


async def _start_serve(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        *CARDCORE,
        "serve",
        "--port",
        str(port),
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _spawned.append(process)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(300):
            if process.returncode is not None:
                _, err = await process.communicate()
                raise AssertionError(f"cardcore serve exited early: {err.decode()[-2000:]}")
            try:
                if (await http.get("/health/ready")).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    process.kill()
    raise AssertionError("cardcore serve did not become ready")


async def _stop(process: asyncio.subprocess.Process, sig: int) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        _, err = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        raise
    return process.returncode or 0, err.decode()


async def _assert_postgres_stops(data_dir: Path, server: psutil.Process) -> None:
    """The server and every PostgreSQL process it forked are gone, and so is its lock file."""
    children = server.children(recursive=True) if server.is_running() else []
    _, alive = await asyncio.to_thread(psutil.wait_procs, [server, *children], 15)
    assert not alive, f"PostgreSQL processes still running: {alive}"
    assert postgres_processes(data_dir / "postgres") == []
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_stopping_serve_stops_its_embedded_postgres(
    embedded_dir: Path, sig: int, workers: str
) -> None:
    """SIGTERM (systemd, Docker, Kubernetes) and SIGINT (Ctrl+C) both stop the API and then the
    PostgreSQL that serve started, and serve exits cleanly."""
    serve = await _start_serve(_embedded_env(embedded_dir), "--workers", workers)
    server = _postmaster(embedded_dir)
    assert server is not None
    assert server in postgres_processes(embedded_dir / "postgres")
    code, err = await _stop(serve, sig)
    assert code == 0, err[-2000:]
    await _assert_postgres_stops(embedded_dir, server)


async def test_postgres_keeps_running_while_another_cardcore_process_uses_it(
    embedded_dir: Path,
) -> None:
    env = _embedded_env(embedded_dir)
    serve = await _start_serve(env)
    server = _postmaster(embedded_dir)
    assert server is not None
    worker = await asyncio.create_subprocess_exec(
        *CARDCORE,
        "worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _spawned.append(worker)
    try:
        # The worker attaches to the running server (its pid joins the wheel's handle list).
        handles = embedded_dir / "postgres" / ".handle_pids.json"
        for _ in range(150):
            # Read without the wheel's lock, so it may be caught half-rewritten: then again.
            text = handles.read_text()
            if text.strip() and worker.pid in json.loads(text):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("cardcore worker did not attach to the embedded PostgreSQL")
        code, err = await _stop(serve, signal.SIGTERM)
        assert code == 0, err[-2000:]
        assert _postmaster(embedded_dir) is not None, "serve stopped a server the worker uses"
    finally:
        code, err = await _stop(worker, signal.SIGTERM)
    assert code == 0, err[-2000:]
    await _assert_postgres_stops(embedded_dir, server)


async def test_serve_recovers_from_a_killed_serve(embedded_dir: Path) -> None:
    """A serve killed outright (SIGKILL, the OOM killer) leaves PostgreSQL running and its pid in
    the handle list. The next serve attaches, and stopping it stops everything."""
    env = _embedded_env(embedded_dir)
    killed = await _start_serve(env)
    server = _postmaster(embedded_dir)
    assert server is not None
    killed.kill()
    await killed.wait()

    serve = await _start_serve(env)
    assert _postmaster(embedded_dir) == server, "the next serve uses the server left running"
    code, err = await _stop(serve, signal.SIGTERM)
    assert code == 0, err[-2000:]
    await _assert_postgres_stops(embedded_dir, server)


async def test_serve_recovers_after_postgres_and_serve_crashed(embedded_dir: Path) -> None:
    """Both died (a host crash): the lock file names a pid that now belongs to some other process,
    and the handle list a serve that is gone. The next serve starts PostgreSQL (which recovers
    from its WAL) and stops it on exit."""
    env = _embedded_env(embedded_dir)
    crashed = await _start_serve(env)
    server = _postmaster(embedded_dir)
    assert server is not None
    lock = embedded_dir / "postgres" / "postmaster.pid"
    written = lock.read_text()
    reused = "\n".join([str(os.getpid()), *written.split("\n")[1:]])  # the pid, reused by us
    # While any process of the cluster still works in its directory, such a lock file stays:
    # it is what keeps a second server from starting beside them.
    lock.write_text(reused)
    forget_dead_processes(embedded_dir / "postgres")
    assert lock.read_text() == reused
    lock.write_text(written)

    crashed.kill()
    await crashed.wait()
    family = [server, *server.children(recursive=True)]
    for process in family:
        process.kill()
    await asyncio.to_thread(psutil.wait_procs, family, 15)
    lock.write_text(reused)

    serve = await _start_serve(env)
    restarted = _postmaster(embedded_dir)
    assert restarted is not None
    assert restarted.pid != server.pid
    code, err = await _stop(serve, signal.SIGTERM)
    assert code == 0, err[-2000:]
    await _assert_postgres_stops(embedded_dir, restarted)
