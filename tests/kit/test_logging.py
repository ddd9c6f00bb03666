"""No card number reaches a log line, whoever logs it and however it is spelled."""

import json
import logging
import re

import pytest
from httpx import AsyncClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.logging import configure_logging, get_logger, luhn_valid, mask_pans
from cardcore.models import AuditLog, Event
from tests.factories import Partner

PANS = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011000990139424",
    "4222222222222",
]


def luhn_valid_runs(text: str) -> list[str]:
    runs = re.findall(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)", text)
    return [r for r in runs if luhn_valid(re.sub(r"[ -]", "", r))]


def test_known_test_pans_are_luhn_valid() -> None:
    assert all(luhn_valid(pan) for pan in PANS)
    assert not luhn_valid("4111111111111112")


def test_mask_keeps_bin_and_last_four() -> None:
    assert mask_pans("card 4111111111111111 ok") == "card 411111******1111 ok"
    assert mask_pans("4111 1111 1111 1111") == "411111******1111"
    assert mask_pans("4111-1111-1111-1111") == "411111******1111"
    # Not Luhn-valid, or too short or long: untouched (order ids, phone numbers).
    assert mask_pans("order 4111111111111112") == "order 4111111111111112"
    assert mask_pans("call 123456789012") == "call 123456789012"
    assert mask_pans("x" + "4" * 25) == "x" + "4" * 25


@given(st.sampled_from(PANS), st.text(alphabet="abc :=,{}\"'", max_size=20))
def test_no_valid_pan_survives_masking(pan: str, around: str) -> None:
    assert luhn_valid_runs(mask_pans(around + pan + around)) == []


def test_every_log_path_is_masked(capsys) -> None:  # type: ignore[no-untyped-def]
    configure_logging("INFO", "json")
    log = get_logger("cardcore.test")
    log.info(
        "charging 4111 1111 1111 1111", pan="5555555555554444", nested={"card": [378282246310005]}
    )
    logging.getLogger("some.library").warning("saw card %s", "6011000990139424")
    try:
        raise ValueError("bad card 4222222222222")
    except ValueError:
        log.exception("failed")
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert len(lines) == 3
    assert luhn_valid_runs(out) == []
    for masked in ("411111******1111", "555555******4444", "601100******9424", "422222***2222"):
        assert masked in out


async def test_request_logs_mask_a_pan_in_the_path(client: AsyncClient, capsys) -> None:  # type: ignore[no-untyped-def]
    configure_logging("INFO", "json")
    response = await client.get("/v1/nowhere/4111111111111111", headers={"X-Request-Id": "mask-1"})
    assert response.status_code == 404
    out = capsys.readouterr().out
    access = [json.loads(line) for line in out.splitlines() if "mask-1" in line]
    assert access
    assert access[0]["path"] == "/v1/nowhere/411111******1111"
    assert access[0]["request_id"] == "mask-1"
    assert luhn_valid_runs(out) == []


async def test_the_access_log_times_the_request(client: AsyncClient, capsys) -> None:  # type: ignore[no-untyped-def]
    configure_logging("INFO", "json")
    assert (await client.get("/v1/ping", headers={"X-Request-Id": "timed-1"})).status_code == 200
    out = capsys.readouterr().out
    access = [json.loads(line) for line in out.splitlines() if "timed-1" in line]
    # The request's own duration (a ping: well under a few seconds), not the process clock.
    assert 0 <= access[0]["duration_ms"] < 5_000, access[0]


async def _request_ids_on_record(session: AsyncSession, program_id: str) -> list[str | None]:
    audit = await session.scalars(
        select(AuditLog.request_id).where(AuditLog.program_id == program_id)
    )
    events = await session.scalars(select(Event.request_id).where(Event.program_id == program_id))
    return [*audit.all(), *events.all()]


@pytest.mark.parametrize(
    "caller_id", ["4111111111111111", "4111-1111-1111-1111", "order:5555555555554444"]
)
async def test_a_card_number_in_x_request_id_is_neither_echoed_nor_stored(
    client: AsyncClient, partner: Partner, session: AsyncSession, capsys, caller_id: str
) -> None:  # type: ignore[no-untyped-def]
    configure_logging("INFO", "json")
    headers = {**partner.headers, "X-Request-Id": caller_id}
    created = await client.post("/v1/api-keys", json={"name": "k"}, headers=headers)
    assert created.status_code == 201, created.text
    refused = await client.post("/v1/api-keys", json={"name": ""}, headers=headers)
    assert refused.status_code == 422

    for response in (created, refused):
        echoed = response.headers["X-Request-Id"]
        assert echoed.startswith("req_")
        assert luhn_valid_runs(echoed) == []
    assert refused.json()["request_id"] == refused.headers["X-Request-Id"]
    recorded = await _request_ids_on_record(session, partner.program_id)
    assert created.headers["X-Request-Id"] in recorded, "the replacement is what is recorded"
    assert refused.headers["X-Request-Id"] in recorded, "the failure's audit row too"
    assert luhn_valid_runs(" ".join(r or "" for r in recorded)) == []
    assert luhn_valid_runs(capsys.readouterr().out) == []


async def test_an_ordinary_x_request_id_is_kept(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    # Not Luhn-valid, or too short for a card: a caller's order number or RRN stays its id.
    for caller_id in ("4111111111111112", "123456789012", "8d0c2f7e-0b1c-4f3a-9d2e-5f6a7b8c9d0e"):
        headers = {**partner.headers, "X-Request-Id": caller_id}
        created = await client.post("/v1/api-keys", json={"name": "k"}, headers=headers)
        assert created.headers["X-Request-Id"] == caller_id
        assert caller_id in await _request_ids_on_record(session, partner.program_id)
