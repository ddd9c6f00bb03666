"""Reference data and the checks built on it: countries, subdivisions, emails, phone numbers.
Everything comes from maintained packages (pycountry, phonenumbers, email-validator), never from
hand-written lists."""

from functools import lru_cache
from typing import Any

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

from cardcore.kit.errors import validation_error


@lru_cache(maxsize=1)
def countries() -> list[dict[str, Any]]:
    return sorted(
        (
            {
                "code": country.alpha_2,
                "alpha3": country.alpha_3,
                "numeric": country.numeric,
                "name": getattr(country, "common_name", None) or country.name,
            }
            for country in pycountry.countries
        ),
        key=lambda c: c["code"],
    )


def country_code(value: str, field: str = "country") -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise validation_error(field, "INVALID_COUNTRY", "Not an ISO 3166-1 alpha-2 code.")
    return code


def subdivisions(country: str) -> list[dict[str, Any]]:
    found = pycountry.subdivisions.get(country_code=country) or []
    return sorted(
        ({"code": s.code, "name": s.name, "type": s.type, "parent": s.parent_code} for s in found),
        key=lambda s: s["code"],
    )


def subdivision_code(country: str, value: str, field: str = "state") -> str:
    """A subdivision of `country`, given as `PL-14` or `14`; returned as the ISO 3166-2 code."""
    code = value.strip().upper()
    if "-" not in code:
        code = f"{country}-{code}"
    found = pycountry.subdivisions.get(code=code)
    if found is None or found.country_code != country:
        raise validation_error(field, "INVALID_STATE", f"Not a subdivision of {country}.")
    return code


def normalize_email(value: str, field: str = "email") -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        # The library's message can quote the address's characters or domain: never the input.
        raise validation_error(
            field, "INVALID_EMAIL", "Not a valid email address (name@example.com)."
        ) from exc


def normalize_phone(value: str, field: str = "phone") -> str:
    """E.164. International form is required: without a country a number is ambiguous."""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise validation_error(
            field, "INVALID_PHONE", "Use the international form, e.g. +48123456789."
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise validation_error(field, "INVALID_PHONE", "This is not a valid phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
