"""The one error shape and the catalog of stable error codes.

Every failure a caller can see is a `CardcoreError` carrying a code from `CATALOG`; one handler
(see `kit/handlers.py`) renders it as

    {"code": "...", "message": "...", "type": "...", "errors": [...], "request_id": "..."}

Codes are part of the API contract: add new ones, never rename or repurpose one.
"""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    type: str
    message: str


CATALOG: dict[str, ErrorSpec] = {
    "VALIDATION_ERROR": ErrorSpec(422, "invalid_request", "The request is not valid."),
    "BAD_REQUEST": ErrorSpec(400, "invalid_request", "The request could not be read."),
    "UNAUTHENTICATED": ErrorSpec(
        401, "authentication", "Missing or invalid credentials for this request."
    ),
    "FORBIDDEN": ErrorSpec(403, "permission", "These credentials may not perform this action."),
    "TEST_MODE_ONLY": ErrorSpec(
        403,
        "permission",
        "Simulation routes are for test programs (ck_test_ credentials); this program is live.",
    ),
    "NOT_FOUND": ErrorSpec(404, "not_found", "No such object."),
    "METHOD_NOT_ALLOWED": ErrorSpec(405, "invalid_request", "Method not allowed on this path."),
    "IDEMPOTENCY_KEY_IN_PROGRESS": ErrorSpec(
        409,
        "conflict",
        "A request with this Idempotency-Key is still being processed; retry later.",
    ),
    "IDEMPOTENCY_KEY_REUSED": ErrorSpec(
        422,
        "invalid_request",
        "This Idempotency-Key was already used with a different request.",
    ),
    "DUPLICATE_REQUEST_ID": ErrorSpec(
        409,
        "conflict",
        "This request_id was already used by this credential; the request was not processed.",
    ),
    "ACCOUNT_LOCKED": ErrorSpec(
        423, "authentication", "Too many failed logins; try again in 15 minutes."
    ),
    "CANNOT_MODIFY_SELF": ErrorSpec(
        409, "conflict", "An admin cannot deactivate or demote themselves."
    ),
    "ENCRYPTION_REQUIRED": ErrorSpec(
        400,
        "invalid_request",
        "This route requires JWE: send Public-Key and Encrypted-Request: true (a body) or "
        "Encrypt-Response: true (no body).",
    ),
    "INVALID_PUBLIC_KEY": ErrorSpec(
        400, "invalid_request", "Public-Key is missing or is not a usable RSA public key."
    ),
    "INVALID_PAYLOAD": ErrorSpec(
        400, "invalid_request", 'The body is not {"payload": "<compact JWE>"} as required.'
    ),
    "CANT_DECRYPT_PAYLOAD": ErrorSpec(
        400, "invalid_request", "The payload could not be decrypted with our keys."
    ),
    "ALREADY_EXISTS": ErrorSpec(
        409, "conflict", "An object with this unique reference already exists."
    ),
    "USER_CLOSED": ErrorSpec(409, "conflict", "This user is closed and can no longer change."),
    "KYC_LOCKED": ErrorSpec(
        409,
        "conflict",
        "Verification data can change only while it is NOT_STARTED, PENDING or REJECTED.",
    ),
    "INVALID_KYC_TRANSITION": ErrorSpec(
        409, "conflict", "This verification status change is not allowed from the current one."
    ),
    "KYC_INCOMPLETE": ErrorSpec(
        422, "invalid_request", "Verification data is missing; `errors` lists what."
    ),
    "PAYLOAD_TOO_LARGE": ErrorSpec(413, "invalid_request", "The upload is too large."),
    "VALUE_OUT_OF_RANGE": ErrorSpec(
        422,
        "invalid_request",
        "A number or time in this request, or a total it would make, is beyond what can be stored.",
    ),
    "UNSUPPORTED_MEDIA_TYPE": ErrorSpec(
        415, "invalid_request", "This file type is not accepted: send JPEG, PNG or PDF."
    ),
    "CURRENCY_MISMATCH": ErrorSpec(
        422, "invalid_request", "The currencies of the accounts or amounts involved differ."
    ),
    "CURRENCY_NOT_ALLOWED": ErrorSpec(
        422, "invalid_request", "This program does not hold money in this currency."
    ),
    "KYC_NOT_APPROVED": ErrorSpec(
        409, "conflict", "The owner's KYC (or KYB) must be APPROVED first."
    ),
    "INSUFFICIENT_FUNDS": ErrorSpec(
        409, "conflict", "The balance does not cover this amount; nothing was moved."
    ),
    "INSUFFICIENT_PARTNER_FUNDS": ErrorSpec(
        409, "conflict", "The partner's balance does not cover this amount; nothing was moved."
    ),
    "BALANCE_NOT_ACTIVE": ErrorSpec(409, "conflict", "The balance is blocked or closed."),
    "BALANCE_NOT_EMPTY": ErrorSpec(
        409, "conflict", "A balance closes only at zero, with no pending holds."
    ),
    "TRANSFER_ALREADY_RESOLVED": ErrorSpec(
        409, "conflict", "This pending transfer was already posted, voided or expired."
    ),
    "TRANSFER_NOT_PENDING": ErrorSpec(409, "conflict", "This transfer is no longer pending."),
    "TRANSACTION_NOT_SETTLED": ErrorSpec(
        409, "conflict", "Only a settled purchase can be refunded."
    ),
    "CLEARING_ABOVE_TOLERANCE": ErrorSpec(
        422,
        "invalid_request",
        "The clearing exceeds its authorization by more than the merchant category allows;"
        " nothing was posted.",
    ),
    "FEE_NOT_REFUNDABLE": ErrorSpec(
        409, "conflict", "Only a CHARGED fee can be refunded, up to what is not yet refunded."
    ),
    "INVALID_IBAN": ErrorSpec(422, "invalid_request", "This is not a valid IBAN."),
    "PIN_TOO_WEAK": ErrorSpec(
        422, "invalid_request", "This PIN is too easy to guess (repeated or sequential digits)."
    ),
    "BIN_EXHAUSTED": ErrorSpec(
        409, "conflict", "The product's BIN range has no free card numbers."
    ),
    "FORM_FACTOR_NOT_ALLOWED": ErrorSpec(
        422, "invalid_request", "The product does not issue this type of card."
    ),
    "EMBOSSING_NAME_NOT_ALLOWED": ErrorSpec(
        422, "invalid_request", "Use one of GET /v1/users/{id}/embossing-names."
    ),
    "GIFT_LOAD_EXCEEDS_MAX": ErrorSpec(
        422, "invalid_request", "The gift amount is above the product's maximum load."
    ),
    "GIFT_NOT_RELOADABLE": ErrorSpec(409, "conflict", "A gift card's balance is loaded once."),
    "INVALID_CARD_TYPE": ErrorSpec(409, "conflict", "This operation is not for this type of card."),
    "INVALID_FULFILLMENT_TRANSITION": ErrorSpec(
        409, "conflict", "The physical card cannot move to that step from where it is."
    ),
    "CARD_NOT_ACTIVATABLE": ErrorSpec(
        409, "conflict", "Only an INACTIVE physical card that was SHIPPED or DELIVERED activates."
    ),
    "CARD_NOT_ACTIVE": ErrorSpec(409, "conflict", "The card is not active."),
    "STRONG_AUTH_REQUIRED": ErrorSpec(
        403,
        "permission",
        "Revealing card data needs a session minted with strong_auth in the last 5 minutes.",
    ),
    "RATE_LIMITED": ErrorSpec(429, "rate_limit", "Too many attempts; try again later."),
    "INVALID_CARD_TRANSITION": ErrorSpec(
        409, "conflict", "The card cannot go to that status from its current one."
    ),
    "LOCK_IRREVERSIBLE": ErrorSpec(
        409, "conflict", "Lost, stolen, inactive and replaced locks (1, 2, 5, 8) are final."
    ),
    "CARD_NUMBER_COMPROMISED": ErrorSpec(
        409,
        "conflict",
        "This card's number was reported lost, stolen or used in fraud: no card with it works "
        "again. Replace the card to get a new number.",
    ),
    "CARD_REPLACED": ErrorSpec(
        409, "conflict", "This card was replaced: act on the card in its `replaced_by`."
    ),
    "CARD_NOT_REPORTABLE": ErrorSpec(
        409, "conflict", "A closed, expired or finally locked card (1, 2, 5, 8) takes no report."
    ),
    "REPORT_ALREADY_OPEN": ErrorSpec(
        409,
        "conflict",
        "The card has an open report: replace, renew or decline it first. Only a lost, stolen or "
        "fraud report takes the place of an open damaged or not-received one.",
    ),
    "REPORT_NOT_OPEN": ErrorSpec(
        409, "conflict", "This report was already replaced, renewed, declined or superseded."
    ),
    "BALANCE_CHANGE_NOT_ALLOWED": ErrorSpec(
        409, "conflict", "This program does not allow moving cards to another balance."
    ),
    "SERVICE_UNAVAILABLE": ErrorSpec(503, "api_error", "The service is not ready."),
    "INTERNAL_ERROR": ErrorSpec(
        500, "api_error", "Something went wrong on our side; quote the request_id to support."
    ),
}


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending input, e.g. `limit`.")
    code: str = Field(description="Machine-readable reason, e.g. `MISSING`.")
    message: str


class ErrorResponse(BaseModel):
    """The body of every non-2xx response."""

    code: str = Field(description="Stable UPPER_SNAKE error code.", examples=["NOT_FOUND"])
    message: str = Field(examples=["No such object."])
    type: str = Field(
        description="Broad class: invalid_request, authentication, permission, not_found, "
        "conflict, api_error.",
        examples=["not_found"],
    )
    errors: list[FieldError] = Field(default_factory=list)
    request_id: str | None = Field(default=None, examples=["req_01jd3z8k1m2n3p4q5r6s7t8v9w"])


class CardcoreError(Exception):
    """A failure with a catalogued code; raised by services, rendered by one handler."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        persist_changes: bool = False,
    ) -> None:
        if code not in CATALOG:
            raise KeyError(f"error code {code} is not in the catalog")
        self.code = code
        self.spec = CATALOG[code]
        self.message = message or self.spec.message
        self.errors = errors or []
        self.headers = headers
        # Most failures undo everything the request did. Some must keep what they wrote, as a
        # failed login keeps its failure count: the session dependency commits those.
        self.persist_changes = persist_changes
        super().__init__(f"{code}: {self.message}")

    @property
    def status(self) -> int:
        return self.spec.status

    def body(self, request_id: str | None) -> dict[str, Any]:
        return ErrorResponse(
            code=self.code,
            message=self.message,
            type=self.spec.type,
            errors=self.errors,
            request_id=request_id,
        ).model_dump(mode="json")


class NotFound(CardcoreError):
    def __init__(self, what: str = "object") -> None:
        super().__init__("NOT_FOUND", f"No such {what}.")


class Unauthenticated(CardcoreError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__("UNAUTHENTICATED", message)


class Forbidden(CardcoreError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__("FORBIDDEN", message)


class OAuthError(Exception):
    """An error of the OAuth endpoints, which answer in RFC 6749 §5.2 form
    (`{"error": "invalid_client", "error_description": "..."}`) so stock OAuth clients work."""

    def __init__(
        self, error: str, description: str, status: int = 400, *, persist_changes: bool = False
    ) -> None:
        self.error = error
        self.description = description
        self.status = status
        self.persist_changes = persist_changes
        super().__init__(f"{error}: {description}")


def validation_error(field: str, code: str, message: str) -> CardcoreError:
    return CardcoreError(
        "VALIDATION_ERROR", message, errors=[FieldError(field=field, code=code, message=message)]
    )


# The OpenAPI response extension listing the codes an error response can carry.
ERROR_CODES_EXTENSION = "x-error-codes"


def error_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: each status with the codes it can carry. The answers
    every route of its shape can give are added to the document by `kit/openapi.py`."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(CATALOG[code].status, []).append(code)
    return {
        status: {
            "model": ErrorResponse,
            "description": "Error codes: " + ", ".join(f"`{c}`" for c in sorted(names)),
            ERROR_CODES_EXTENSION: sorted(names),
        }
        for status, names in sorted(by_status.items())
    }


def catalog_markdown() -> str:
    rows = "\n".join(
        f"| `{code}` | {spec.status} | {spec.type} | {spec.message} |"
        for code, spec in sorted(CATALOG.items())
    )
    return "| code | HTTP | type | meaning |\n| --- | --- | --- | --- |\n" + rows
