"""A database error never puts a cardholder's data in a log.

PostgreSQL quotes the failing row ("Failing row contains (…, Quentinella, 1987-06-05, …)"), the
driver quotes its parameters and SQLAlchemy appended the statement's parameters: an unhandled
error during a KYC write logged the first name, birth date, address lines and national-id
ciphertext. The engine hides parameters, and a logged exception shows its class, SQLSTATE and
constraint instead of its message, whoever logs it.
"""

import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.logging import configure_logging, get_logger
from tests.customers.helpers import create_user
from tests.factories import ADDRESS, PERSONAL, Partner

KYC = {
    **PERSONAL,
    "first_name": "Quentinella",
    "middle_name": "Ysolde",
    "last_name": "Vandersloot",
    "date_of_birth": "1987-06-05",
    "national_id_number": "ZX9876543",
}
LINE = "77 Rue Imaginaire"
# Every way these values could be spelled in a log: as sent, as Python shows a date, the id's
# digits alone.
VALUES = [
    "Quentinella",
    "Ysolde",
    "Vandersloot",
    "1987-06-05",
    "1987, 6, 5",
    "ZX9876543",
    "9876543",
]
VALUES += ["Imaginaire"]
# What quoted rows and parameters looked like.
QUOTING = ["Failing row contains", "DETAIL", "[parameters", "Key ("]


def assert_no_personal_data(out: str) -> None:
    for value in VALUES + QUOTING:
        assert value not in out, value


@pytest.fixture
async def lenient_client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    # A 500 is an answer to check here, not an exception to raise in the test.
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://cardcore") as client:
        yield client


async def test_a_database_error_during_a_kyc_write_logs_no_kyc_values(
    lenient_client: AsyncClient, partner: Partner, session: AsyncSession, capsys
) -> None:  # type: ignore[no-untyped-def]
    client = lenient_client
    user = await create_user(client, partner)
    # Rules the code does not know about, so the writes fail in the database, unhandled.
    await session.execute(
        text(
            "ALTER TABLE users ADD CONSTRAINT test_refuse_first_name "
            "CHECK (first_name IS DISTINCT FROM 'Quentinella') NOT VALID"
        )
    )
    await session.execute(
        text(
            "ALTER TABLE addresses ADD CONSTRAINT test_refuse_line1 "
            f"CHECK (line1 IS DISTINCT FROM '{LINE}') NOT VALID"
        )
    )
    configure_logging("INFO", "json")

    personal = await client.put(
        f"/v1/users/{user['id']}/kyc/personal", json=KYC, headers=partner.headers
    )
    address = await client.post(
        f"/v1/users/{user['id']}/kyc/addresses",
        json={**ADDRESS, "line1": LINE, "line2": "Quentinella's flat"},
        headers=partner.headers,
    )
    assert (personal.status_code, address.status_code) == (500, 500)

    out = capsys.readouterr().out
    assert_no_personal_data(out)
    assert_no_personal_data(personal.text + address.text)
    # What the operator gets instead: which rule, on which table, and where in the code.
    errors = [json.loads(line) for line in out.splitlines() if "unhandled_error" in line]
    assert [(e["sqlstate"], e["constraint"], e["table"]) for e in errors] == [
        ("23514", "test_refuse_first_name", "users"),
        ("23514", "test_refuse_line1", "addresses"),
    ]
    assert all("Traceback" in e["exception"] for e in errors)
    assert all("customers/service.py" in e["exception"] for e in errors)


async def test_any_logged_database_error_is_stripped(
    partner: Partner, session: AsyncSession, capsys
) -> None:  # type: ignore[no-untyped-def]
    """Not only the request handler: a job or a library logging the exception is safe too."""
    configure_logging("INFO", "json")
    log = get_logger("cardcore.some_job")
    statement = text(
        "INSERT INTO admin_users (id, program_id, email, password_hash, role) "
        "VALUES (gen_random_uuid(), CAST(:program AS uuid), :email, 'x', 'admin')"
    )
    params = {"program": _uuid(partner.program_id), "email": "quentinella@example.com"}
    await session.execute(statement, params)
    with pytest.raises(IntegrityError) as raised:
        async with session.begin_nested():
            await session.execute(statement, params)
    try:
        raise RuntimeError("the job failed") from raised.value
    except RuntimeError:
        log.exception("job_failed")
    out = capsys.readouterr().out
    assert "quentinella" not in out.lower()
    assert_no_personal_data(out)
    (line,) = [json.loads(x) for x in out.splitlines() if "job_failed" in x]
    assert "UniqueViolationError" in line["exception"]
    assert "uq_admin_users_program_id_email" in line["exception"]
    assert "the job failed" in line["exception"], "other exceptions keep their message"


def _uuid(public_id: str) -> str:
    from cardcore.models.ids import to_uuid

    value = to_uuid("prg", public_id)
    assert value is not None
    return str(value)
