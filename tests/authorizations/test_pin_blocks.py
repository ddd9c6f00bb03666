"""The network sends the PIN as an ISO 9564 PIN block under the program's zone PIN key: verified
against the card's keyed PIN hash, with the clear PIN never in a message, a row or a log line."""

import json
from typing import Any

import pytest
from httpx import AsyncClient
from hypothesis import given, settings
from hypothesis import strategies as st

from cardcore.cards.pin_blocks import PinVerdict, ZoneKey, verify_pin_block
from cardcore.cards.security import pin_hash
from cardcore.kit.crypto import generate_key_spec, parse_keys
from cardcore.kit.logging import configure_logging
from tests.authorizations.network import authorize, body
from tests.authorizations.pin_blocks import (
    AES_ZPK,
    TDES3_ZPK,
    TDES_ZPK,
    format0_block,
    format0_clear,
    format4_block,
    kcv,
)
from tests.factories import Partner, World
from tests.kit.jose import encrypted_post, opened

PIN = "739184"
KEYRING = parse_keys(generate_key_spec("pins"))


# -- the blocks the tests build, against published examples ---------------------------------------


def test_the_test_blocks_reproduce_published_examples() -> None:
    # The format 0 example that circulates with ISO 9564 (PAN 43219876543210987, PIN 1234).
    assert format0_clear("1234", "43219876543210987").hex().upper() == "0412AC89ABCDEF67"
    # psec's published format 4 example (AES key 0011…EEFF, PAN 1234567890123456, fixed fill).
    assert (
        format4_block(
            "1234",
            "1234567890123456",
            "00112233445566778899AABBCCDDEEFF",
            fill=bytes.fromhex("1122334455667788"),
        )
        == "7CDF645C86CAF763AE34637A66997534"
    )
    # The well-known check value of the test key 0123456789ABCDEF FEDCBA9876543210.
    assert kcv("TDES", TDES_ZPK) == "08D7B4"


def _verify(block: str, fmt: int, pan: str, keys: list[ZoneKey], pin: str | None) -> PinVerdict:
    return verify_pin_block(
        bytes.fromhex(block),
        fmt,
        pan,
        keys,
        keyring=KEYRING,
        pin_scope="card_scope",
        expected_hash=None if pin is None else pin_hash(KEYRING, "card_scope", pin),
    )


def test_the_verifier_reads_published_blocks() -> None:
    aes = [ZoneKey("AES", bytes.fromhex("00112233445566778899AABBCCDDEEFF"))]
    published = "E4BE5B623AF7E006AC319E5B93544564"  # psec's format 4 decipher example
    assert _verify(published, 4, "1234567890123456", aes, "1234") is PinVerdict.MATCH
    assert _verify(published, 4, "1234567890123456", aes, "4321") is PinVerdict.MISMATCH
    assert _verify(published, 4, "1234567890123457", aes, "1234") is PinVerdict.UNREADABLE
    assert _verify(published, 4, "1234567890123456", aes, None) is PinVerdict.MISMATCH

    tdes = [ZoneKey("TDES", bytes.fromhex(TDES_ZPK))]
    classic = format0_block("1234", "43219876543210987")
    assert _verify(classic, 0, "43219876543210987", tdes, "1234") is PinVerdict.MATCH
    assert _verify(classic, 0, "43219876543210987", tdes, "1235") is PinVerdict.MISMATCH
    # Format 0 under an AES key only: no key for it. Under another TDES key: unreadable.
    assert _verify(classic, 0, "43219876543210987", aes, "1234") is PinVerdict.NO_KEY
    other = [ZoneKey("TDES", bytes.fromhex(TDES3_ZPK))]
    assert _verify(classic, 0, "43219876543210987", other, "1234") is PinVerdict.UNREADABLE
    # The first key that reads the block decides: a previous key still works after a new one.
    assert _verify(classic, 0, "43219876543210987", other + tdes, "1234") is PinVerdict.MATCH


@settings(max_examples=40, deadline=None)
@given(
    pin=st.text(alphabet="0123456789", min_size=4, max_size=12),
    other=st.text(alphabet="0123456789", min_size=4, max_size=12),
    pan=st.text(alphabet="0123456789", min_size=13, max_size=19),
    fmt=st.sampled_from([0, 4]),
)
def test_any_pin_and_pan_verify_in_both_formats(pin: str, other: str, pan: str, fmt: int) -> None:
    keys = [ZoneKey("TDES", bytes.fromhex(TDES3_ZPK)), ZoneKey("AES", bytes.fromhex(AES_ZPK))]
    block = format0_block(pin, pan, TDES3_ZPK) if fmt == 0 else format4_block(pin, pan)
    assert _verify(block, fmt, pan, keys, pin) is PinVerdict.MATCH
    if other != pin:
        assert _verify(block, fmt, pan, keys, other) is PinVerdict.MISMATCH


# -- through /v1/network/authorizations -----------------------------------------------------------


async def install_zpk(
    client: AsyncClient, world: World, algorithm: str, key: str, **extra: object
) -> dict[str, Any]:
    answer = opened(
        await encrypted_post(
            client,
            "/v1/admin/zone-pin-keys",
            {"algorithm": algorithm, "key": key, **extra},
            world.admin.headers,
        )
    )
    return answer["data"]  # type: ignore[no-any-return]


async def card_with_pin(client: AsyncClient, partner: Partner, world: World) -> str:
    """Sets the world card's PIN; returns its PAN."""
    card_id = world.card.id
    await encrypted_post(client, f"/v1/cards/{card_id}/pin", {"pin": PIN}, partner.headers, "PUT")
    revealed = opened(
        await encrypted_post(
            client, f"/v1/cards/{card_id}/reveal", {"fields": ["pan"]}, partner.headers
        )
    )
    return revealed["data"]["pan"]  # type: ignore[no-any-return]


async def with_block(client: AsyncClient, world: World, block: str, fmt: int) -> dict[str, Any]:
    return await authorize(client, world, pin_block=block, pin_block_format=fmt)


def outcome(answer: dict[str, Any]) -> tuple[bool, str, str | None]:
    return answer["approved"], answer["response_code"], answer["decline_reason"]


async def test_format_0_right_pin_approves_and_the_third_wrong_pin_locks(
    client: AsyncClient, partner: Partner, world: World
) -> None:
    pan = await card_with_pin(client, partner, world)
    installed = await install_zpk(client, world, "TDES", TDES_ZPK)
    assert (installed["kcv"], installed["key_bits"], installed["status"]) == (
        "08D7B4",
        128,
        "CURRENT",
    )

    assert outcome(await with_block(client, world, format0_block(PIN, pan), 0)) == (
        True,
        "00",
        None,
    )
    wrong = [
        await with_block(client, world, format0_block(p, pan), 0)
        for p in ("739185", "1357", "902468")
    ]
    assert [outcome(w) for w in wrong] == [
        (False, "55", "WRONG_PIN"),
        (False, "55", "WRONG_PIN"),
        (False, "75", "PIN_TRIES_EXCEEDED"),
    ]
    card = (await client.get(f"/v1/cards/{world.card.id}", headers=partner.headers)).json()["data"]
    assert (card["status"], card["lock_reason"], card["failure_action_code"]) == (
        "LOCKED",
        6,
        "1006",
    )
    assert outcome(await with_block(client, world, format0_block(PIN, pan), 0))[1] == "75"


async def test_a_right_pin_resets_the_wrong_pin_count(
    client: AsyncClient, partner: Partner, world: World
) -> None:
    pan = await card_with_pin(client, partner, world)
    await install_zpk(client, world, "TDES", TDES3_ZPK)
    for _ in range(2):
        assert (
            outcome(await with_block(client, world, format0_block("2468", pan, TDES3_ZPK), 0))[1]
            == "55"
        )
        assert (await with_block(client, world, format0_block(PIN, pan, TDES3_ZPK), 0))["approved"]


async def test_format_4_under_aes_and_key_rotation_with_a_grace_period(
    client: AsyncClient, partner: Partner, world: World, session
) -> None:  # type: ignore[no-untyped-def]
    pan = await card_with_pin(client, partner, world)
    old = await install_zpk(client, world, "TDES", TDES_ZPK)
    aes = await install_zpk(client, world, "AES", AES_ZPK, kcv=kcv("AES", AES_ZPK))
    assert (aes["algorithm"], aes["key_bits"], aes["kcv"]) == ("AES", 256, kcv("AES", AES_ZPK))

    assert (await with_block(client, world, format4_block(PIN, pan), 4))["approved"] is True
    wrong = await with_block(client, world, format4_block("2580", pan), 4)
    assert outcome(wrong) == (False, "55", "WRONG_PIN")
    # No grace: the TDES key it replaced reads nothing any more, and no key serves format 0.
    stale = await with_block(client, world, format0_block(PIN, pan), 0)
    assert outcome(stale) == (False, "86", "NO_ZONE_PIN_KEY")

    # A new TDES key with an hour's grace for the AES one: both formats verify meanwhile.
    await install_zpk(client, world, "TDES", TDES3_ZPK, previous_key_grace_seconds=3600)
    assert (await with_block(client, world, format0_block(PIN, pan, TDES3_ZPK), 0))["approved"]
    assert (await with_block(client, world, format4_block(PIN, pan), 4))["approved"]
    listed = await client.get("/v1/admin/zone-pin-keys", headers=world.admin.headers)
    rows = listed.json()["data"]
    assert [(r["algorithm"], r["key_bits"], r["kcv"], r["status"]) for r in rows] == [
        ("TDES", 192, kcv("TDES", TDES3_ZPK), "CURRENT"),
        ("AES", 256, kcv("AES", AES_ZPK), "PREVIOUS"),
    ]
    assert rows[1]["usable_until"] is not None
    assert old["id"] not in listed.text
    for key in (TDES_ZPK, TDES3_ZPK, AES_ZPK):
        assert key not in listed.text.upper()

    # After the grace period the AES key is gone.
    from sqlalchemy import text

    await session.execute(
        text(
            "UPDATE zone_pin_keys SET usable_until = now() - interval '1 second'"
            " WHERE algorithm = 'AES'"
        )
    )
    await session.commit()
    gone = await with_block(client, world, format4_block(PIN, pan), 4)
    assert outcome(gone) == (False, "86", "NO_ZONE_PIN_KEY")


async def test_a_block_for_another_pan_or_under_another_key_is_unreadable_and_no_try(
    client: AsyncClient, partner: Partner, world: World
) -> None:
    pan = await card_with_pin(client, partner, world)
    await install_zpk(client, world, "TDES", TDES_ZPK)
    # Another card's number: the digit before the check digit differs, which lands in the fill.
    other_pan = pan[:-2] + str((int(pan[-2]) + 1) % 10) + pan[-1]
    for block in (format0_block(PIN, other_pan), format0_block(PIN, pan, TDES3_ZPK)):
        answer = await with_block(client, world, block, 0)
        assert outcome(answer) == (False, "81", "PIN_BLOCK_UNREADABLE")
    await install_zpk(client, world, "AES", AES_ZPK)
    answer = await with_block(client, world, format4_block(PIN, other_pan), 4)
    assert outcome(answer) == (False, "81", "PIN_BLOCK_UNREADABLE")
    # None of those was the cardholder's try: the card is active and the right PIN works.
    card = (await client.get(f"/v1/cards/{world.card.id}", headers=partner.headers)).json()
    assert card["data"]["status"] == "ACTIVE"
    assert (await with_block(client, world, format4_block(PIN, pan), 4))["approved"] is True


async def test_without_a_zone_pin_key_a_pin_block_is_declined_clearly(
    client: AsyncClient, partner: Partner, world: World
) -> None:
    pan = await card_with_pin(client, partner, world)
    answer = await with_block(client, world, format0_block(PIN, pan), 0)
    assert outcome(answer) == (False, "86", "NO_ZONE_PIN_KEY")
    assert answer["held_amount"] == 0


MALFORMED = [
    {"pin": "4931"},  # a clear PIN is not taken any more
    {"pin_block": "Z" * 16, "pin_block_format": 0},
    {"pin_block": "A" * 20, "pin_block_format": 0},
    {"pin_block": "A" * 32, "pin_block_format": 0},
    {"pin_block": "A" * 16, "pin_block_format": 4},
    {"pin_block": "A" * 16, "pin_block_format": 3},
    {"pin_block": "A" * 16},
    {"pin_block_format": 0},
]


async def test_a_malformed_pin_block_is_a_clear_422(
    client: AsyncClient, partner: Partner, world: World
) -> None:
    for fields in MALFORMED:
        response = await client.post(
            "/v1/network/authorizations", json=body(world, **fields), headers=world.network.headers
        )
        assert response.status_code == 422, (fields, response.text)
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert "4931" not in response.text
    # Refused whole: no transaction, nothing held.
    listed = await client.get("/v1/transactions", headers=partner.headers)
    assert listed.json()["data"] == []


async def test_no_pin_key_or_block_reaches_a_log_line(
    client: AsyncClient, partner: Partner, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    pan = await card_with_pin(client, partner, world)
    configure_logging("DEBUG", "json")
    capsys.readouterr()
    await install_zpk(client, world, "AES", AES_ZPK)
    blocks = [format4_block(PIN, pan), format4_block("246813", pan)]
    answers = [await with_block(client, world, b, 4) for b in blocks]
    assert [a["response_code"] for a in answers] == ["00", "55"]
    out = capsys.readouterr().out
    assert out, "the requests were logged"
    for line in out.splitlines():
        json.loads(line)
    for secret in (PIN, "246813", AES_ZPK, *blocks):
        assert secret not in out
        assert secret.lower() not in out
