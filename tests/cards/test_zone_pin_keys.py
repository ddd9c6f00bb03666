"""Installing the zone PIN key a program shares with its processor: only encrypted, only by an
admin, only wrapped at rest, shown only by its check value — through the API and the CLI."""

import asyncio
import json
import os
import sys

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from cardcore.cards import zone_pin_keys
from cardcore.config import Settings
from cardcore.kit.crypto import parse_keys
from tests.authorizations.pin_blocks import AES_ZPK, TDES_ZPK, kcv
from tests.factories import Partner, bearer, make_admin
from tests.kit.jose import encrypted_post, opened

PATH = "/v1/admin/zone-pin-keys"


async def test_only_an_admin_installs_it_and_only_encrypted(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    partner: Partner,
    other_partner: Partner,
) -> None:
    admin = (await make_admin(app, partner)).token
    manager = (await make_admin(app, partner, "manager")).token
    body = {"algorithm": "TDES", "key": TDES_ZPK, "kcv": "08d7b4"}

    plain = await client.post(PATH, json=body, headers=bearer(admin))
    assert (plain.status_code, plain.json()["code"]) == (400, "ENCRYPTION_REQUIRED")
    assert TDES_ZPK not in plain.text
    refused = await encrypted_post(client, PATH, body, bearer(manager))
    assert refused.status_code == 403
    partner_call = await encrypted_post(client, PATH, body, partner.headers)
    assert partner_call.status_code in (401, 403)
    assert (await client.get(PATH, headers=bearer(manager))).json()["data"] == []

    installed = opened(await encrypted_post(client, PATH, body, bearer(admin)))["data"]
    assert (installed["algorithm"], installed["key_bits"], installed["kcv"]) == (
        "TDES",
        128,
        "08D7B4",
    )
    assert installed["id"].startswith("zpk_")
    listed = await client.get(PATH, headers=bearer(manager))
    assert [k["kcv"] for k in listed.json()["data"]] == ["08D7B4"]
    assert TDES_ZPK not in listed.text.upper()

    # Wrapped by the master keyring at rest: neither the key nor its hex is in the row.
    row = (await session.execute(text("SELECT * FROM zone_pin_keys"))).one()
    dumped = "|".join(v.hex() if isinstance(v, bytes) else str(v) for v in row).upper()
    assert TDES_ZPK not in dumped
    assert bytes.fromhex(TDES_ZPK) not in row.wrapped_key

    # Another program sees none of it.
    other_admin = (await make_admin(app, other_partner)).token
    assert (await client.get(PATH, headers=bearer(other_admin))).json()["data"] == []


BAD_KEYS = [
    ({"algorithm": "TDES", "key": TDES_ZPK, "kcv": "000000"}, "KCV_MISMATCH"),
    ({"algorithm": "TDES", "key": AES_ZPK}, "INVALID_KEY"),  # 64 digits: not TDES
    ({"algorithm": "TDES", "key": "0123456789ABCDEF" * 2}, "WEAK_KEY"),  # K1 = K2: single DES
    ({"algorithm": "AES", "key": "00" * 16}, "WEAK_KEY"),
    ({"algorithm": "AES", "key": "0123456789ABCDEF0123456789ABCDEG"}, None),  # not hex
    ({"algorithm": "DES", "key": TDES_ZPK}, None),
    ({"algorithm": "AES", "key": AES_ZPK, "previous_key_grace_seconds": 604_801}, None),
]


async def test_a_bad_key_is_refused_and_not_echoed(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    admin = (await make_admin(app, partner)).token
    for body, code in BAD_KEYS:
        response = await encrypted_post(client, PATH, body, bearer(admin))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["code"] == "VALIDATION_ERROR"
        if code is not None:
            assert response.json()["errors"][0]["code"] == code
        assert str(body["key"]) not in response.text.upper()
    assert (await client.get(PATH, headers=bearer(admin))).json()["data"] == []


# -- the CLI ---------------------------------------------------------------------------------------


async def cli(*args: str, stdin: str = "", env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cardcore",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 120)
    return process.returncode or 0, out.decode(), err.decode()


@pytest.mark.slow  # a `cardcore` process
async def test_the_cli_installs_a_key_from_components_on_stdin(
    committed_app: FastAPI, settings: Settings, engine: AsyncEngine
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDCORE_")}
    env.update(
        CARDCORE_DATABASE_URL=settings.database_url or "",
        CARDCORE_MASTER_KEYS=settings.master_keys or "",
    )
    code, out, err = await cli("bootstrap", "--json", env=env)
    assert code == 0, err
    program_id = json.loads(out)["program_id"]

    # Two custodians' components whose XOR is the key.
    first = "F0E1D2C3B4A5968778695A4B3C2D1E0F"
    second = bytes(
        a ^ b for a, b in zip(bytes.fromhex(first), bytes.fromhex(TDES_ZPK), strict=True)
    )
    components = f"{first}\n{second.hex().upper()}\n"
    base = ("keys", "set-zpk", "--program", program_id, "--algorithm", "TDES")

    code, out, err = await cli(*base, "--kcv", "ABCDEF", stdin=components, env=env)
    assert code != 0
    assert "check value" in err
    for secret in (TDES_ZPK, first, second.hex().upper()):
        assert secret not in out + err

    code, out, err = await cli(*base, "--kcv", "08D7B4", "--json", stdin=components, env=env)
    assert code == 0, err
    assert json.loads(out)["kcv"] == "08D7B4"
    assert TDES_ZPK not in out + err

    code, out, err = await cli("keys", "list-zpk", "--program", program_id, "--json", env=env)
    assert code == 0, err
    assert [(k["kcv"], k["status"]) for k in json.loads(out)] == [("08D7B4", "CURRENT")]

    # What the server will use to verify PIN blocks is that key.
    async with AsyncSession(engine) as session:
        keys = await zone_pin_keys.usable_keys(
            session, parse_keys(settings.master_keys or ""), program_id
        )
    assert [(k.algorithm, k.key.hex().upper()) for k in keys] == [("TDES", TDES_ZPK)]
    assert kcv("TDES", TDES_ZPK) == "08D7B4"
