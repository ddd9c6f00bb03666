"""schemathesis over the whole OpenAPI document, with every kind of credential.

For each operation, schemathesis sends the examples the document gives and a few generated
requests, valid and invalid, each with a credential of the channel the route serves (partner key
or token, network key, cardholder session, ops of each role, or none), and with the ids of real
objects in the path, query and body some of the time so that requests reach past the 404. Every
answer must be no 5xx, carry a status the document declares for that operation, and match the
schema declared for that status.

It is bounded (a few examples per operation, no shrinking, a fixed seed), so it takes about a
minute and finds the same things on every run. `pytest -m fuzz` selects it.
"""

import copy
import os
import uuid
import zlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.arena import BASE_URL, CALLER_KEY, Arena, ProgramWorld, document
from tests.kit.jose import public_key_header, sign

pytestmark = pytest.mark.fuzz

# Generated requests per operation (beside the document's examples). A deeper run, to look for
# trouble rather than to guard against it: CARDCORE_FUZZ_EXAMPLES=50 pytest -m fuzz.
MAX_EXAMPLES = int(os.environ.get("CARDCORE_FUZZ_EXAMPLES", "8"))
COVERAGE = os.environ.get("CARDCORE_FUZZ_COVERAGE") == "1"
SEED = int(os.environ.get("CARDCORE_FUZZ_SEED", "16"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]
SECURITY_HEADERS = ("x-api-key", "authorization", "x-auth-token", "x-jws-signature")
JWE = ("public-key", "encrypted-request", "encrypt-response")

# Which credentials serve which routes (DESIGN.md, "Who calls it"). A signed request
# (X-JWS-Signature) is signed over the exact bytes sent, with its request_id in the protected
# header, since a generated body has none of its own.
PARTNER = ("partner key", "partner token", "partner X-Auth-Token", "partner JWS")
OPS = ("ops admin", "ops manager", "ops employee")
CHANNELS = [
    ("/v1/me", ("cardholder", "cardholder X-Auth-Token")),
    ("/v1/network/", ("network key",)),
    ("/v1/admin/", OPS),
    ("/v1/simulate/", ("test-mode key",)),
    ("/v1/", PARTNER + OPS),
]
# Now and then, a credential of another channel, or none: the answer must still be declared.
STRANGERS = ("anonymous", "cardholder", "network key", "ops employee")

# Where a generated request names an object, the id of a real one in program A (the caller's).
# Path parameters are matched by name; `request_id` means a different object on each route.
PATH_OBJECTS = {
    ("/v1/requests/{request_id}", "request_id"): "card_request",
    ("/v1/physical-requests/{request_id}/approve", "request_id"): "physical_request",
    ("/v1/physical-requests/{request_id}/reject", "request_id"): "physical_request",
}
FIELD_OBJECTS = {
    "from_balance_id": "balance",
    "to_balance_id": "balance",
    "authorization_id": "transaction",
}


# Values that broke cardcore before (issue 16), offered in place of generated strings and
# integers now and then, where the schema allows them: a NUL, an id outside the id alphabet, a
# date PostgreSQL cannot hold, a card number (no error may echo it), amounts around 2^63.
CARD_NUMBER = "4111111111111111"
HOSTILE_STRINGS = [
    "a\u0000b",
    "bal_0000uq9yzzzzzzzzzzzzzzzzzz",
    "card_bkxhiz7uegilaz7hh7kmam6143",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    CARD_NUMBER,
    "9223372036854775808",
]
HOSTILE_INTEGERS = [2**63 - 1, 2**63, -(2**63) - 1, 2**64, 2**31]


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "dictionaries": {
                "hostile-strings": {"values": HOSTILE_STRINGS},
                "hostile-integers": {"values": HOSTILE_INTEGERS},
            },
            "generation": {
                "dictionaries": {
                    "string": {"dictionary": "hostile-strings", "probability": 0.15},
                    "integer": {"dictionary": "hostile-integers", "probability": 0.15},
                },
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "no-shrink": True,
                "database": "none",
                # Credentials are ours to choose (below), not generated.
                "with-security-parameters": False,
            },
            "phases": {
                "examples": {"enabled": True},
                "fuzzing": {"enabled": True},
                # Every boundary of every schema: thousands of requests, for a deeper run only.
                "coverage": {"enabled": COVERAGE},
                "stateful": {"enabled": False},
            },
        }
    )


# Collection needs the operations before any database exists (see `document`); the last test
# checks that this is the document the arena's app serves.
schema = schemathesis.openapi.from_dict(copy.deepcopy(document()), config=_config())


def _pick(case: Any, options: Sequence[Any], salt: str) -> Any:
    """A choice that depends only on the generated request, so a replay makes the same one."""
    body = None if isinstance(case.body, NotSet) else case.body  # NotSet's repr is an address
    seed = repr((salt, case.path_parameters, case.query, body, case.media_type))
    return options[zlib.crc32(seed.encode()) % len(options)]


_ADMITTED: dict[str, tuple[str, ...]] = {}


def _admitted(arena: Arena, operation: Any) -> tuple[str, ...]:
    """The credentials of the route's channel that it lets in (ops roles differ route by route),
    found once per operation by a bare request: the guard answers before the body is read."""
    if operation.label not in _ADMITTED:
        path = operation.path
        channel = next(names for prefix, names in CHANNELS if path.startswith(prefix))
        url = path.format_map(
            {name: _object_for(path, name, arena.a) or "x" for name in _path_names(path)}
        )
        admitted = []
        for name in channel:
            headers = _headers(arena.a, name, operation.method.upper(), url)
            if operation.definition.raw.get("x-encryption") == "required":
                headers |= {"Public-Key": public_key_header(CALLER_KEY), "Encrypt-Response": "true"}
            answer = arena.run(
                arena.isolated(arena.client.request(operation.method.upper(), url, headers=headers))
            )
            code = answer.json().get("code") if answer.status_code in (401, 403) else None
            if code not in ("UNAUTHENTICATED", "FORBIDDEN"):
                admitted.append(name)
        _ADMITTED[operation.label] = tuple(admitted) or channel
    return _ADMITTED[operation.label]


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _credential(arena: Arena, case: Any) -> str:
    if not case.operation.definition.raw.get("security"):
        return "anonymous"
    if _pick(case, (True, False, False, False, False), "stranger"):  # one request in five
        return str(_pick(case, STRANGERS, "credential"))
    return str(_pick(case, _admitted(arena, case.operation), "credential"))


def _headers(
    world: ProgramWorld, name: str, method: str, url: str, body: bytes = b""
) -> dict[str, str]:
    """The credential's headers for this very request (a signature covers its method, path,
    query and body)."""
    if name == "anonymous":
        return {}
    if name == "partner JWS":
        parts = urlsplit(url)
        return {
            "X-JWS-Signature": sign(
                world.signer, method, parts.path, body, parts.query, request_id=uuid.uuid4().hex
            )
        }
    return dict(world.credentials[name])


def _object_for(path: str, name: str, world: ProgramWorld) -> str | None:
    kind = PATH_OBJECTS.get((path, name))
    if kind is None:
        kind = FIELD_OBJECTS.get(name, name.removesuffix("_id") if name.endswith("_id") else None)
    return world.ids.get(kind) if kind else None


def _use_real_ids(case: Any, world: ProgramWorld) -> None:
    """Put real ids where the generated ones stood."""
    path = case.operation.path
    for name in list(case.path_parameters or {}):
        real = _object_for(path, name, world)
        if real is not None:
            case.path_parameters[name] = real
    for container in (case.query, case.body):
        if isinstance(container, dict):
            for name in list(container):
                real = _object_for(path, name, world) if name.endswith("_id") else None
                if real is not None:
                    container[name] = real


def send(arena: Arena, case: Any) -> Any:
    """Send the case as schemathesis would, through the arena's client and savepoints."""
    world = arena.a
    # Every choice is made from the generated request alone, before real ids (new on every run)
    # go in, so a run repeats the one before it.
    credential = _credential(arena, case)
    real_ids = _pick(case, (True, True, False), "ids")  # two requests in three
    # JWE has tests of its own; asked for at random it would stop most requests at the door.
    dropped = SECURITY_HEADERS + (() if _pick(case, (True, False, False, False), "jwe") else JWE)
    if real_ids:
        _use_real_ids(case, world)
    for header in list(case.headers or {}):
        if header.lower() in dropped:
            del case.headers[header]
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    prepared = requests.Request(
        **{
            key: kwargs[key]
            for key in ("method", "url", "headers", "params", "cookies", "data", "json", "files")
            if key in kwargs
        }
    ).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body or b""
    prepared.headers.update(
        _headers(world, credential, prepared.method or "GET", prepared.url or "", body)
    )
    return arena.run(
        arena.isolated(
            arena.client.request(
                prepared.method or "GET",
                prepared.url or "",
                content=prepared.body,
                # Bytes go out as they are, as a server would receive them, ASCII or not.
                headers={
                    k: v.encode() if isinstance(v, str) else v for k, v in prepared.headers.items()
                },
            )
        )
    )


@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_every_operation_answers_as_documented(case: Any, arena: Arena) -> None:
    response = send(arena, case)
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        # An error message never repeats the input: it may be a card number.
        assert CARD_NUMBER not in response.text, response.text


def test_the_fuzz_runs_in_one_process() -> None:
    # Under a pytest-xdist worker, schemathesis' plugin collects this module's fuzz test as one
    # item that sends one request, not one item per operation: `make test` runs `-m fuzz` alone.
    assert "PYTEST_XDIST_WORKER" not in os.environ, "run the fuzz tests without -n (pytest -m fuzz)"


def test_the_fuzzed_document_is_the_one_served(arena: Arena) -> None:
    assert arena.app.openapi() == schema.raw_schema
