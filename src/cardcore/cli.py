"""`cardcore` on the command line: serve, worker, migrate, bootstrap, api-keys, keys.

Every command works on the same database as `serve`: CARDCORE_DATABASE_URL if set, otherwise the
embedded PostgreSQL under CARDCORE_DATA_DIR (started for the command if `serve` is not running).
"""

import asyncio
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.config import get_settings
from cardcore.db import (
    create_engine,
    create_sessionmaker,
    database_url,
    release_embedded_postgres,
)
from cardcore.kit.crypto import load_keyring
from cardcore.models import ApiKey, Program, ProgramMode, ids
from cardcore.programs import service
from cardcore.programs.repository import ApiKeyRepository

app = typer.Typer(help="cardcore: an issuer-side card management system.", no_args_is_help=True)
api_keys_app = typer.Typer(help="Create, list and revoke partner API keys.", no_args_is_help=True)
app.add_typer(api_keys_app, name="api-keys")
credentials_app = typer.Typer(help="Partner OAuth clients and JWS secrets.", no_args_is_help=True)
app.add_typer(credentials_app, name="credentials")
keys_app = typer.Typer(help="Server keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")

T = TypeVar("T")


@app.callback()
def _check_settings() -> None:
    # Before any command: a bad or removed setting is one clear message and exit status 2, not a
    # traceback (and never a value: a setting may be a secret).
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "".join(f"CARDCORE_{part}".upper() for part in error["loc"][:1])
            message = error["msg"].removeprefix("Value error, ")
            typer.echo(f"cardcore: {name + ': ' if name else ''}{message}", err=True)
        raise typer.Exit(2) from None


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: URL | str | None = None) -> Any:
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["configure_logging"] = False
    if url is not None:
        config.attributes["url"] = url
    return config


def run_migrations(url: URL | str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def _in_transaction(fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `fn` in one committed transaction on the configured database."""
    settings = get_settings()

    async def run() -> T:
        engine = create_engine(database_url(settings), settings)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await fn(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, default=str))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [CARDCORE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [CARDCORE_PORT].")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes [CARDCORE_WORKERS].")] = None,
    migrate: Annotated[bool, typer.Option(help="Apply migrations before serving.")] = True,
) -> None:
    """Serve the API (on the embedded PostgreSQL unless CARDCORE_DATABASE_URL is set) until
    SIGTERM or SIGINT; then stop the embedded PostgreSQL too, unless another process uses it."""
    import signal

    # uvicorn shuts down gracefully on SIGTERM and SIGINT and then raises the signal again with
    # the handler that was there before it; with the default one SIGTERM would kill the process
    # before the embedded PostgreSQL is released, and it would run on. This handler turns the
    # signal, then or during start-up, into an orderly exit. (With --workers, uvicorn's
    # supervisor handles both signals itself and returns.)
    def stop(signum: int, frame: object) -> None:
        raise _Stopped(signum)

    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, stop)
    try:
        _serve(host, port, workers, migrate)
    except _Stopped:
        pass
    finally:
        # Stopping PostgreSQL takes a moment; a second signal must not cut it short.
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, signal.SIG_IGN)
        release_embedded_postgres()


class _Stopped(Exception):
    """SIGTERM or SIGINT asked `cardcore serve` to stop."""


def _serve(host: str | None, port: int | None, workers: int | None, migrate: bool) -> None:
    import uvicorn

    from cardcore.kit.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    url = database_url(settings)
    if migrate:
        run_migrations(url)
    ensure_server_keys()
    workers = workers or settings.workers
    if workers > 1:
        # Worker processes must find the database this process resolved (the embedded one
        # included) and share one metrics registry on disk.
        os.environ["CARDCORE_DATABASE_URL"] = url.render_as_string(hide_password=False)
        metrics_dir = settings.data_dir.resolve() / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    host, port = host or settings.host, port or settings.port
    typer.echo(
        f"cardcore {'(embedded PostgreSQL) ' if not settings.database_url else ''}on "
        f"http://{host}:{port} — API docs at http://{host}:{port}/docs",
        err=True,
    )
    uvicorn.run(
        "cardcore.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Do all work that is due, then exit.")] = False,
) -> None:
    """Run the background worker (webhook delivery, scheduled jobs) until SIGINT or SIGTERM."""
    import signal

    from cardcore.kit.jobs import schedule_periodic
    from cardcore.kit.logging import configure_logging
    from cardcore.worker import JOBS, build_worker, run_worker

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    keyring = load_keyring(settings)

    async def run() -> None:
        engine = create_engine(database_url(settings), settings)
        sessionmaker = create_sessionmaker(engine)
        try:
            if once:
                async with sessionmaker() as session, session.begin():
                    await schedule_periodic(session, JOBS)
                await build_worker(sessionmaker, keyring, settings).drain()
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await run_worker(sessionmaker, keyring, settings, stop=stop)
        finally:
            await engine.dispose()

    asyncio.run(run())


@app.command()
def migrate() -> None:
    """Apply every database migration (alembic upgrade head)."""
    run_migrations(database_url(get_settings()))
    typer.echo("database is at the latest migration", err=True)


@app.command()
def bootstrap(
    program: Annotated[str, typer.Option("--program", help="Name of the new program.")] = "Default",
    currency: Annotated[
        list[str] | None, typer.Option(help="Currencies the program holds (repeatable).")
    ] = None,
    admin_email: Annotated[str | None, typer.Option(help="The first admin's email.")] = None,
    admin_password: Annotated[
        str | None, typer.Option(help="The first admin's password (generated if omitted).")
    ] = None,
    test: Annotated[
        bool,
        typer.Option(
            "--test",
            help="Make a test (sandbox) program: play money, ck_test_ keys, /v1/simulate/*. "
            "A program's mode never changes.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a program with an API key and an admin user. Each call creates a new program, live
    unless --test."""
    from cardcore.kit.money import currency_exponent

    currencies = [code.upper() for code in (currency or ["EUR"])]
    unknown = [code for code in currencies if currency_exponent(code) is None]
    if unknown:
        raise typer.BadParameter(f"not ISO 4217 currencies: {', '.join(unknown)}")
    settings = get_settings()
    run_migrations(database_url(settings))
    password = admin_password or service.generate_password()

    async def create(session: AsyncSession) -> dict[str, str]:
        created = await service.create_program(
            session,
            name=program,
            currencies=currencies,
            mode=ProgramMode.TEST if test else ProgramMode.LIVE,
        )
        _, secret = await service.create_api_key(session, program_id=created.id, name="bootstrap")
        email = admin_email or f"admin+{created.id}@cardcore.local"
        admin = await service.create_admin_user(
            session, program_id=created.id, email=email, password=password, role="admin"
        )
        return {
            "program_id": created.id,
            "mode": created.mode,
            "api_key": secret,
            "admin_email": admin.email,
            "admin_password": password,
        }

    result = _in_transaction(create)
    if as_json:
        _echo_json(result)
    else:
        for name, value in result.items():
            typer.echo(f"{name}: {value}")
        typer.echo("Keep the API key and password now: they are not shown again.", err=True)


def _check_program_id(program_id: str) -> str:
    if not ids.is_valid("prg", program_id):
        raise typer.BadParameter(f"{program_id!r} is not a program id (prg_…)")
    return program_id


ProgramOption = Annotated[
    str, typer.Option("--program", help="Program id (prg_…).", callback=_check_program_id)
]


@api_keys_app.command("create")
def api_keys_create(
    program_id: ProgramOption,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
    kind: Annotated[
        str, typer.Option(help="partner, or network for the card processor")
    ] = "partner",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create an API key; its secret is printed once and starts with the program's mode
    (ck_live_ or ck_test_)."""

    async def create(session: AsyncSession) -> dict[str, str]:
        if await session.get(Program, program_id) is None:
            raise typer.BadParameter(f"no program {program_id}")
        key, secret = await service.create_api_key(
            session, program_id=program_id, name=name, kind=kind
        )
        return {"id": key.id, "program_id": program_id, "kind": key.kind, "api_key": secret}

    result = _in_transaction(create)
    if as_json:
        _echo_json(result)
    else:
        typer.echo(f"{result['id']} {result['api_key']}")


@api_keys_app.command("list")
def api_keys_list(
    program_id: ProgramOption, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List a program's API keys (never their secrets)."""

    async def fetch(session: AsyncSession) -> list[dict[str, Any]]:
        keys = await session.scalars(
            ApiKeyRepository(session, program_id).readable().order_by(ApiKey.id)
        )
        return [
            {
                "id": key.id,
                "name": key.name,
                "kind": key.kind,
                "prefix": key.display_prefix,
                "status": "REVOKED" if key.revoked_at else "ACTIVE",
                "last_used_at": key.last_used_at,
            }
            for key in keys
        ]

    rows = _in_transaction(fetch)
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['id']}  {row['status']:<8} {row['prefix']}…  {row['name']}")


@api_keys_app.command("revoke")
def api_keys_revoke(key_id: Annotated[str, typer.Argument(help="API key id (key_…).")]) -> None:
    """Revoke an API key: it stops working at once."""
    if not ids.is_valid("key", key_id):
        raise typer.BadParameter(f"{key_id!r} is not an API key id (key_…)")

    async def revoke(session: AsyncSession) -> None:
        key = await session.get(ApiKey, key_id, with_for_update=True)
        if key is None:
            raise typer.BadParameter(f"no API key {key_id}")
        await service.revoke_api_key(session, key)

    _in_transaction(revoke)
    typer.echo(f"revoked {key_id}", err=True)


@credentials_app.command("create")
def credentials_create(
    program_id: ProgramOption,
    type: Annotated[str, typer.Option("--type", help="client_credentials or jws")],
    name: Annotated[str, typer.Option(help="What the credential is for.")] = "cli",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create an OAuth client or a JWS secret; the secret is printed once."""
    from cardcore.auth import service as auth_service

    settings = get_settings()
    keyring = load_keyring(settings)

    async def create(session: AsyncSession) -> dict[str, str]:
        if await session.get(Program, program_id) is None:
            raise typer.BadParameter(f"no program {program_id}")
        credential, secret = await auth_service.create_credential(
            session, keyring, program_id=program_id, type=type, name=name
        )
        id_field, secret_field = (
            ("client_id", "client_secret")
            if type == "client_credentials"
            else ("auth_id", "secret")
        )
        return {"id": credential.id, "type": type, id_field: credential.id, secret_field: secret}

    result = _in_transaction(create)
    if as_json:
        _echo_json(result)
    else:
        for field, value in result.items():
            typer.echo(f"{field}: {value}")


@keys_app.command("rotate-jwt")
def rotate_jwt() -> None:
    """Add a new token signing key. Tokens signed by the old ones stay valid until they expire."""
    from cardcore.kit.tokens import rotate_signing_keys

    keyring = load_keyring(get_settings())

    async def rotate(session: AsyncSession) -> str:
        return await rotate_signing_keys(session, keyring)

    typer.echo(f"signing with {_in_transaction(rotate)}", err=True)


@keys_app.command("rotate-jwe")
def rotate_jwe() -> None:
    """Add a new JWE key. The old one still decrypts for CARDCORE_JWE_KEY_GRACE_SECONDS."""
    from cardcore.kit.encryption import ENCRYPTION_KEYS
    from cardcore.kit.server_keys import rotate_server_keys

    keyring = load_keyring(get_settings())

    async def rotate(session: AsyncSession) -> str:
        return await rotate_server_keys(session, keyring, **ENCRYPTION_KEYS)

    typer.echo(f"encrypting to {_in_transaction(rotate)}", err=True)


@keys_app.command("set-zpk")
def set_zpk(
    program_id: ProgramOption,
    algorithm: Annotated[
        str, typer.Option(help="TDES (ISO 9564 format 0 blocks) or AES (format 4).")
    ],
    kcv: Annotated[
        str | None,
        typer.Option(help="The processor's key check value: refuse a key that does not match."),
    ] = None,
    grace_seconds: Annotated[
        int, typer.Option(help="How long the replaced key still verifies (0 to 604800).")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Install the program's zone PIN key, read as hex from stdin: one line, or one line per
    key component (the components are XORed). Replaces the current key; shows only the KCV."""
    import sys
    from datetime import timedelta

    from cardcore.cards import zone_pin_keys
    from cardcore.kit.errors import CardcoreError

    algorithm = algorithm.upper()
    components = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
    try:
        key = zone_pin_keys.parse_key(algorithm, components)
    except CardcoreError as exc:
        raise typer.BadParameter(exc.message) from None
    keyring = load_keyring(get_settings())

    async def install(session: AsyncSession) -> dict[str, Any]:
        if await session.get(Program, program_id) is None:
            raise typer.BadParameter(f"no program {program_id}")
        try:
            row = await zone_pin_keys.install(
                session,
                keyring,
                program_id=program_id,
                algorithm=algorithm,
                key=key,
                expected_kcv=kcv,
                grace=timedelta(seconds=grace_seconds),
                installed_by="cli",
            )
        except CardcoreError as exc:
            raise typer.BadParameter(exc.message) from None
        return {"id": row.id, "algorithm": row.algorithm, "key_bits": row.key_bits, "kcv": row.kcv}

    result = _in_transaction(install)
    if as_json:
        _echo_json(result)
    else:
        typer.echo(f"{result['id']} {result['algorithm']}-{result['key_bits']} KCV {result['kcv']}")


@keys_app.command("list-zpk")
def list_zpk(
    program_id: ProgramOption, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """The program's zone PIN keys that verify PIN blocks now, by check value."""
    from cardcore.cards import zone_pin_keys

    async def fetch(session: AsyncSession) -> list[dict[str, Any]]:
        return [
            {
                "id": row.id,
                "algorithm": row.algorithm,
                "key_bits": row.key_bits,
                "kcv": row.kcv,
                "status": zone_pin_keys.status(row),
                "usable_until": row.usable_until,
            }
            for row in await zone_pin_keys.listed(session, program_id)
        ]

    rows = _in_transaction(fetch)
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        until = f" until {row['usable_until']}" if row["usable_until"] else ""
        typer.echo(
            f"{row['id']}  {row['status']:<8} {row['algorithm']}-{row['key_bits']}"
            f"  KCV {row['kcv']}{until}"
        )


def ensure_server_keys() -> None:
    """Create the token-signing and JWE keys on first start, so the first partner call does not
    pay for RSA key generation."""
    from cardcore.kit.encryption import ENCRYPTION_KEYS
    from cardcore.kit.server_keys import create_server_key
    from cardcore.kit.tokens import SIGNING_KEYS

    keyring = load_keyring(get_settings())

    async def ensure(session: AsyncSession) -> None:
        for spec in (SIGNING_KEYS, ENCRYPTION_KEYS):
            await create_server_key(session, keyring, only_if_none=True, **spec)

    _in_transaction(ensure)


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Prove the books balance; exits 1 and lists every problem if they do not."""
    from cardcore.ledger.verify import verify

    async def check(session: AsyncSession) -> list[str]:
        return await verify(session)

    problems = _in_transaction(check)
    for problem in problems:
        typer.echo(problem)
    if problems:
        typer.echo(f"ledger NOT consistent: {len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo("ledger consistent: debits equal credits, and every total matches its transfers")


@keys_app.command("rotate-pan")
def rotate_pan(
    batch: Annotated[int, typer.Option(help="Cards re-encrypted per transaction.")] = 500,
) -> None:
    """Add a PAN data key version and re-encrypt every card under it, in small transactions, while
    the service keeps running (cards not yet moved still decrypt with their own version)."""
    from cardcore.cards.vault import PanVault

    settings = get_settings()
    vault = PanVault(load_keyring(settings))

    async def run() -> tuple[int, int]:
        engine = create_engine(database_url(settings), settings)
        sessionmaker = create_sessionmaker(engine)
        try:
            async with sessionmaker() as session, session.begin():
                version = await vault.add_key(session)
            moved = 0
            while True:
                async with sessionmaker() as session, session.begin():
                    done = await vault.reencrypt_batch(session, version, limit=batch)
                    left = await vault.cards_below(session, version) if done == 0 else 1
                moved += done
                if left == 0:
                    return version, moved
                if done == 0:
                    await asyncio.sleep(0.2)  # the rest are locked by requests in flight
        finally:
            await engine.dispose()

    version, moved = asyncio.run(run())
    typer.echo(f"PAN data key version {version}; {moved} cards re-encrypted", err=True)
