"""The error answers every operation can give, added to the OpenAPI document in one place.

Routes declare their own domain codes with `error_responses(...)`. What follows from the shape of
a route rather than from its purpose is added here, from the finished document, so no route can
forget it:

- a credential (the operation has `security`): 401 UNAUTHENTICATED, 403 FORBIDDEN; signed
  requests (X-JWS-Signature) also 409 DUPLICATE_REQUEST_ID and 422 VALIDATION_ERROR;
- a body: 400 BAD_REQUEST (unreadable: not JSON, not UTF-8, a broken form), 413 PAYLOAD_TOO_LARGE;
- JWE (`x-encryption`): 400 INVALID_PUBLIC_KEY, INVALID_PAYLOAD and CANT_DECRYPT_PAYLOAD, and
  ENCRYPTION_REQUIRED where it is required;
- POST: 409 IDEMPOTENCY_KEY_IN_PROGRESS, 422 IDEMPOTENCY_KEY_REUSED;
- a value in the path (an id, a country code): 404 NOT_FOUND;
- parameters or a body: 422 VALIDATION_ERROR.

Every error response then lists its codes in its description and in `x-error-codes`, with one
example body per code.
"""

from typing import Any

from cardcore.kit.errors import CATALOG, ERROR_CODES_EXTENSION

_ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}
_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"
_JWE_CODES = ("INVALID_PUBLIC_KEY", "INVALID_PAYLOAD", "CANT_DECRYPT_PAYLOAD")
_EXAMPLE_REQUEST_ID = "req_01jd3z8k1m2n3p4q5r6s7t8v9w"
_EXAMPLE_FIELD_ERROR = {"field": "amount", "code": "MISSING", "message": "Field required"}


def generic_codes(operation: dict[str, Any], method: str) -> set[str]:
    """The codes `operation` can answer by its shape alone."""
    codes: set[str] = set()
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    if schemes:
        codes |= {"UNAUTHENTICATED", "FORBIDDEN"}
    if "JWSSignature" in schemes:
        codes |= {"DUPLICATE_REQUEST_ID", "VALIDATION_ERROR"}
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    if has_body:
        codes |= {"BAD_REQUEST", "PAYLOAD_TOO_LARGE"}
    mode = operation.get("x-encryption", "off")
    if mode != "off":
        codes |= set(_JWE_CODES)
    if mode == "required":
        codes.add("ENCRYPTION_REQUIRED")
    if method == "post":
        codes |= {"IDEMPOTENCY_KEY_IN_PROGRESS", "IDEMPOTENCY_KEY_REUSED"}
    if any(p.get("in") == "path" for p in parameters):
        codes.add("NOT_FOUND")
    if parameters or has_body:
        codes.add("VALIDATION_ERROR")
    return codes


def _example(code: str) -> dict[str, Any]:
    spec = CATALOG[code]
    return {
        "summary": spec.message,
        "value": {
            "code": code,
            "message": spec.message,
            "type": spec.type,
            "errors": [_EXAMPLE_FIELD_ERROR] if code == "VALIDATION_ERROR" else [],
            "request_id": _EXAMPLE_REQUEST_ID,
        },
    }


def _is_error_shaped(response: dict[str, Any]) -> bool:
    """Declared by `error_responses`, or FastAPI's own 422 (whose shape we never send)."""
    if ERROR_CODES_EXTENSION in response:
        return True
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == _FASTAPI_VALIDATION)


def _complete_operation(operation: dict[str, Any], method: str) -> None:
    responses = operation.setdefault("responses", {})
    by_status: dict[str, set[str]] = {}
    for code in generic_codes(operation, method):
        by_status.setdefault(str(CATALOG[code].status), set()).add(code)
    for status, codes in by_status.items():
        existing = responses.get(status)
        if existing is not None and not _is_error_shaped(existing):
            continue  # written by hand in another shape (the OAuth endpoints' RFC 6749 errors)
        if existing is None or ERROR_CODES_EXTENSION not in existing:
            responses[status] = existing = {ERROR_CODES_EXTENSION: []}
        existing[ERROR_CODES_EXTENSION] = sorted(set(existing[ERROR_CODES_EXTENSION]) | codes)
    for response in responses.values():
        if ERROR_CODES_EXTENSION not in response:
            continue
        names = sorted(response[ERROR_CODES_EXTENSION])
        response[ERROR_CODES_EXTENSION] = names
        response["description"] = "Error codes: " + ", ".join(f"`{name}`" for name in names)
        response["content"] = {
            "application/json": {
                "schema": _ERROR_SCHEMA,
                "examples": {name: _example(name) for name in names},
            }
        }
    operation["responses"] = dict(sorted(responses.items()))


def complete_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Add every operation's generic error answers to `document` (in place) and return it."""
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _complete_operation(operation, method)
    schemas = document.get("components", {}).get("schemas", {})
    if _FASTAPI_VALIDATION.rsplit("/", 1)[1] not in str(document.get("paths")):
        # FastAPI's validation error models describe an answer cardcore never gives.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document
