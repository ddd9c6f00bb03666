"""What the OpenAPI document promises about request bodies and error answers, checked over every
operation it lists (the fuzz tests in tests/fuzz check the answers themselves)."""

from typing import Any

import pytest
from fastapi import FastAPI

# POST routes whose body has no required field but still needs one of two: a bare POST is wrong.
NEEDS_A_BODY = {
    "/v1/cards/{card_id}/3ds": "a phone, an email, or both",
    "/v1/network/balance-inquiries": "the card, by card_id or pan",
}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def test_a_post_with_nothing_required_takes_no_body(app: FastAPI) -> None:
    """An action with nothing to say (approve a KYC review, fail a transfer, decline a report)
    accepts a POST without a body, as its documentation says."""
    document = app.openapi()
    refused = []
    for method, path, operation in _operations(document):
        body = operation.get("requestBody")
        if method != "post" or body is None or path in NEEDS_A_BODY:
            continue
        json_body = body["content"].get("application/json")
        if json_body is None:
            continue
        if not _schema(document, json_body["schema"]).get("required") and body.get("required"):
            refused.append(path)
    assert refused == []


async def test_a_bare_post_to_such_a_route_works(app: FastAPI, client, partner) -> None:  # type: ignore[no-untyped-def]
    created = await client.post("/v1/users", headers=partner.headers)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["id"].startswith("usr_")


def test_every_error_answer_names_its_codes_with_an_example_each(app: FastAPI) -> None:
    document = app.openapi()
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            codes = response.get("x-error-codes")
            if codes is None:
                continue
            examples = response["content"]["application/json"]["examples"]
            assert sorted(examples) == codes, (method, path, status)
            for code in codes:
                assert examples[code]["value"]["code"] == code


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        # The answers schemathesis found undeclared (issue 16, item 11).
        ("post", "/v1/users", "400", "BAD_REQUEST"),  # a body that is not UTF-8 JSON
        ("post", "/v1/cards/{card_id}/reveal", "400", "ENCRYPTION_REQUIRED"),
        ("post", "/v1/cards/{card_id}/reveal", "400", "INVALID_PUBLIC_KEY"),
        ("get", "/v1/users/{user_id}/kyc", "404", "NOT_FOUND"),
        ("get", "/v1/corporations/{corporation_id}/kyb", "404", "NOT_FOUND"),
        ("get", "/v1/admin/kyc-reviews/{user_id}", "404", "NOT_FOUND"),
        ("put", "/v1/cards/{card_id}/controls", "409", "CARD_NOT_ACTIVE"),
        ("post", "/v1/cards/{card_id}/reports", "409", "INVALID_CARD_TRANSITION"),
        ("post", "/v1/card-reports/{report_id}/replace", "409", "INVALID_CARD_TRANSITION"),
        ("post", "/v1/users", "409", "IDEMPOTENCY_KEY_IN_PROGRESS"),
        ("post", "/v1/users", "422", "IDEMPOTENCY_KEY_REUSED"),
        ("post", "/v1/users", "413", "PAYLOAD_TOO_LARGE"),
        ("get", "/v1/cards/{card_id}/transactions", "404", "NOT_FOUND"),
    ],
)
def test_the_answers_found_undeclared_are_declared(
    app: FastAPI, method: str, path: str, status: str, code: str
) -> None:
    response = app.openapi()["paths"][path][method]["responses"][status]
    assert code in response["x-error-codes"]
    assert response["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }


def test_async_issuance_declares_its_202(app: FastAPI) -> None:
    responses = app.openapi()["paths"]["/v1/cards"]["post"]["responses"]
    assert responses["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/One_CardRequestOut_"
    }
    assert responses["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/One_CardOut_"
    }


def test_no_operation_documents_fastapi_s_own_validation_error(app: FastAPI) -> None:
    """cardcore answers 422 in its one error shape, never FastAPI's `detail` list."""
    document = app.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in _operations(document):
        if operation.get("parameters") or "requestBody" in operation:
            answer = operation["responses"]["422"]
            assert "VALIDATION_ERROR" in answer.get("x-error-codes", []), (method, path)
