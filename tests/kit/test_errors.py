"""Every failure has the one error shape, with the request id in the body and the header."""

from typing import Any

from httpx import AsyncClient

from tests.factories import Partner

SHAPE = {"code", "message", "type", "errors", "request_id"}


def assert_error(response, status: int, code: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == SHAPE
    assert body["code"] == code
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert "detail" not in body
    return body


async def test_unknown_route_is_404_in_our_shape(client: AsyncClient) -> None:
    assert_error(await client.get("/v1/nothing-here"), 404, "NOT_FOUND")


async def test_wrong_method_is_405_in_our_shape(client: AsyncClient) -> None:
    assert_error(await client.put("/v1/ping"), 405, "METHOD_NOT_ALLOWED")


async def test_missing_api_key_is_401(client: AsyncClient) -> None:
    body = assert_error(await client.get("/v1/events"), 401, "UNAUTHENTICATED")
    assert body["type"] == "authentication"


async def test_wrong_api_key_is_401(client: AsyncClient) -> None:
    response = await client.get("/v1/events", headers={"X-API-Key": "ck_live_nope"})
    assert_error(response, 401, "UNAUTHENTICATED")


async def test_validation_error_lists_fields(client: AsyncClient, partner: Partner) -> None:
    response = await client.post("/v1/api-keys", json={"name": ""}, headers=partner.headers)
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert body["errors"] == [
        {"field": "name", "code": "STRING_TOO_SHORT", "message": body["errors"][0]["message"]}
    ]


async def test_query_validation_error(client: AsyncClient, partner: Partner) -> None:
    response = await client.get("/v1/events?limit=101", headers=partner.headers)
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "limit"


async def test_unreadable_json_is_422(client: AsyncClient, partner: Partner) -> None:
    response = await client.post(
        "/v1/api-keys",
        content=b"{not json",
        headers={**partner.headers, "Content-Type": "application/json"},
    )
    assert_error(response, 422, "VALIDATION_ERROR")


async def test_validation_errors_never_echo_the_input(
    client: AsyncClient, partner: Partner
) -> None:
    pan = "4111111111111111"
    response = await client.post("/v1/api-keys", json={"name": int(pan)}, headers=partner.headers)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert pan not in response.text


async def test_malformed_id_is_404_not_500(client: AsyncClient, partner: Partner) -> None:
    for bad in ("x", "key_", "key_" + "z" * 26, "prg_01m80k0t4srfsqm4vtjebjnzfq", "key_' OR 1=1"):
        response = await client.get(f"/v1/api-keys/{bad}", headers=partner.headers)
        assert_error(response, 404, "NOT_FOUND")


async def test_request_id_is_echoed(client: AsyncClient) -> None:
    response = await client.get("/v1/ping", headers={"X-Request-Id": "RRN-000000123456"})
    assert response.headers["X-Request-Id"] == "RRN-000000123456"


async def test_request_id_is_generated_when_absent_or_unsafe(client: AsyncClient) -> None:
    generated = (await client.get("/v1/ping")).headers["X-Request-Id"]
    assert generated.startswith("req_")
    unsafe = await client.get("/v1/ping", headers={"X-Request-Id": "a b\tc" + "x" * 200})
    assert unsafe.headers["X-Request-Id"].startswith("req_")
    assert unsafe.headers["X-Request-Id"] != generated
