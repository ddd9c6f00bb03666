"""Another program's ids, and another cardholder's, are unknown ids: on every route that takes one.

For every operation of the OpenAPI document whose path names an object, and for each id in that
path in turn, the test calls it three ways with program A's credentials (each kind the route
accepts: the partner's API key, an ops admin's token, a cardholder's session):

- with A's own object: the control. The answer must not be 404 nor refuse the body, or the
  other two calls would prove nothing;
- with program B's object of the same kind (and, on `/v1/me/…`, with cardholder 2's object under
  cardholder 1's session): the answer must be 404 NOT_FOUND, and nothing in the database may
  change;
- with a well-formed id that exists nowhere: the answer the previous one must equal, body and all
  (request id aside), so a foreign id cannot be told from a missing one.

The body, query and headers are the smallest valid request schemathesis derives from the
document; routes that require JWE get it. A route whose path holds an id the world cannot supply
fails, unless `NOT_AN_OBJECT` says why it needs none, so a new route cannot escape the matrix.
"""

import copy
import json
from functools import cache
from typing import Any

import pytest
import requests
import schemathesis
from httpx import Response
from hypothesis import HealthCheck, Phase, find, settings
from schemathesis.config import SchemathesisConfig
from sqlalchemy import text

from cardcore.models import Base
from cardcore.models.ids import new_id
from tests.customers.helpers import JPEG, PDF
from tests.fuzz.arena import BASE_URL, CALLER_KEY, Arena, ProgramWorld, document
from tests.kit.jose import encrypt_to, public_key_header

pytestmark = pytest.mark.fuzz

# Path parameters that do not name an object of a program.
NOT_AN_OBJECT = {
    ("/v1/countries/{code}/states", "code"): "a country code: reference data, the same for all",
}
# Where the parameter's name alone does not say which kind of object it is.
KIND_OF = {
    ("/v1/requests/{request_id}", "request_id"): "card_request",
    ("/v1/physical-requests/{request_id}/approve", "request_id"): "physical_request",
    ("/v1/physical-requests/{request_id}/reject", "request_id"): "physical_request",
    # A user in the review queue: were scoping broken, approving would really approve.
    ("/v1/admin/kyc-reviews/{user_id}", "user_id"): "review_user",
    ("/v1/admin/kyc-reviews/{user_id}/approve", "user_id"): "review_user",
    ("/v1/admin/kyc-reviews/{user_id}/reject", "user_id"): "review_user",
}
# Rows a refused request may still write, and why that is no change to the object.
MAY_CHANGE = {
    "audit_log": "every refused mutation is audited, with its outcome",
    "api_keys": "the key that called records when it was last used",
}
# Bodies for routes whose smallest schema-valid body the route still refuses (an empty form
# field counts as a missing one).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/users/{user_id}/kyc/documents"): {
        "data": {"type": "passport", "side": "front"},
        "files": {"file": ("passport.jpg", JPEG, "image/jpeg")},
    },
    ("post", "/v1/corporations/{corporation_id}/kyb/documents"): {
        "data": {"type": "proof_of_address"},
        "files": {"file": ("proof.pdf", PDF, "application/pdf")},
    },
    ("post", "/v1/cards/{card_id}/3ds"): {"json": {"email": "zofia@example.com"}},
}
# Body fields the smallest body fills with values that exist only in name.
FIELD_VALUES = {"currency": "EUR", "pin": "4931"}


def _id_operations() -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, item in document()["paths"].items()
        for method in item
        if "{" in path
    ]


def _credentials(path: str, world: ProgramWorld) -> dict[str, dict[str, str]]:
    if path.startswith("/v1/me/"):
        return {"cardholder": world.credentials["cardholder"]}
    if path.startswith("/v1/admin/"):
        return {"ops admin": world.credentials["ops admin"]}
    return {
        "partner key": world.credentials["partner key"],
        "ops admin": world.credentials["ops admin"],
    }


def _kind(path: str, name: str) -> str:
    return KIND_OF.get((path, name), name.removesuffix("_id"))


def _foreign_worlds(arena: Arena, path: str) -> dict[str, dict[str, str]]:
    """Whose ids a caller from program A (cardholder 1 on /v1/me) must not reach."""
    foreign = {"program B": arena.b.ids}
    if path.startswith("/v1/me/"):
        holder = arena.a.cardholders[1]
        foreign["cardholder 2"] = {
            **arena.a.ids,
            "user": holder.user_id,
            "balance": holder.balance_id,
            "card": holder.card_id,
        }
    return foreign


@cache
def _smallest_case(method: str, path: str) -> Any:
    """The simplest request the document allows (hypothesis shrinks to it: deterministic)."""
    operation = _schema()[path][method.upper()]
    return find(
        operation.as_strategy(),
        lambda case: True,
        settings=settings(
            database=None,
            derandomize=True,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        ),
    )


@cache
def _schema() -> Any:
    config = SchemathesisConfig.from_dict(
        {"generation": {"with-security-parameters": False, "allow-x00": False}}
    )
    return schemathesis.openapi.from_dict(copy.deepcopy(document()), config=config)


def _request(
    arena: Arena,
    method: str,
    path: str,
    ids: dict[str, str],
    headers: dict[str, str],
    own: dict[str, str],
) -> dict[str, Any]:
    case = _smallest_case(method, path)
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    kwargs["url"] = BASE_URL + path.format(**ids)
    if (method, path) in BODIES:
        for key in ("json", "data", "files"):
            kwargs.pop(key, None)
        kwargs.update(BODIES[(method, path)])
    elif isinstance(kwargs.get("json"), dict):
        # Objects the body names are the caller's own: only the path's id is under test.
        kwargs["json"] = {
            name: own.get(_kind(path, name), value)
            if name.endswith("_id")
            else FIELD_VALUES.get(name, value)
            for name, value in kwargs["json"].items()
        }
    operation = document()["paths"][path][method]
    if operation.get("x-encryption") == "required":
        server = arena.run(arena.client.get("/v1/encryption/public-key")).json()["data"]
        kwargs["headers"] = {**kwargs["headers"], "Public-Key": public_key_header(CALLER_KEY)}
        if kwargs.get("json") is not None:
            kwargs["data"] = encrypt_to(server, kwargs.pop("json"))
            kwargs["headers"]["Encrypted-Request"] = "true"
            kwargs["headers"]["Content-Type"] = "application/json"
        else:
            kwargs["headers"]["Encrypt-Response"] = "true"
    prepared = requests.Request(
        **{
            key: kwargs[key]
            for key in ("method", "url", "headers", "params", "data", "json", "files")
            if key in kwargs
        }
    ).prepare()
    return {
        "method": prepared.method,
        "url": prepared.url,
        "content": prepared.body,
        "headers": dict(prepared.headers),
    }


def _table_digest(table: str) -> str:
    # Table names come from our own metadata, never from input.
    rows = f'"{table}"'
    return f"SELECT '{table}', md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) FROM {rows} t"  # noqa: S608, E501


_DIGEST = " UNION ALL ".join(
    _table_digest(table.name)
    for table in Base.metadata.sorted_tables
    if table.name not in MAY_CHANGE
)


async def _digest(arena: Arena) -> dict[str, str]:
    rows = await arena.connection.execute(text(_DIGEST))
    return dict(rows.all())


async def _probe(arena: Arena, request: dict[str, Any]) -> tuple[Response, list[str]]:
    """Send `request` in a savepoint rolled back after it (every call of the matrix is, so none
    changes the world for the next); the answer and the tables it changed."""
    savepoint = await arena.connection.begin_nested()
    try:
        before = await _digest(arena)
        response = await arena.client.request(**request)
        after = await _digest(arena)
        return response, sorted(name for name in before if before[name] != after[name])
    finally:
        await savepoint.rollback()


def _body(response: Response) -> Any:
    try:
        answer = response.json()
    except ValueError:
        return response.text
    if isinstance(answer, dict):
        answer.pop("request_id", None)
    return answer


@pytest.mark.parametrize(
    ("method", "path"), _id_operations(), ids=[f"{m.upper()} {p}" for m, p in _id_operations()]
)
def test_another_program_s_or_cardholder_s_id_is_an_unknown_id(
    arena: Arena, method: str, path: str
) -> None:
    names = [name for name in _path_names(path) if (path, name) not in NOT_AN_OBJECT]
    if not names:
        pytest.skip(NOT_AN_OBJECT[(path, _path_names(path)[0])])
    own = arena.a.ids
    unsupplied = [name for name in names if _kind(path, name) not in own]
    assert not unsupplied, (
        f"{method.upper()} {path}: the matrix has no object for {unsupplied}; add one to the "
        "world in tests/fuzz/arena.py (or say in NOT_AN_OBJECT why it names none)"
    )
    own_ids = {name: own[_kind(path, name)] for name in names}
    accepted = 0
    for credential, headers in _credentials(path, arena.a).items():
        control, _ = arena.run(_probe(arena, _request(arena, method, path, own_ids, headers, own)))
        if control.status_code in (401, 403) and _body(control).get("code") in (
            "UNAUTHENTICATED",
            "FORBIDDEN",
        ):
            continue  # this kind of caller may not use the route at all
        accepted += 1
        assert control.status_code != 404, (credential, control.text)
        assert not (
            control.status_code == 422 and _body(control).get("code") == "VALIDATION_ERROR"
        ), (credential, "the matrix's request is refused even with own ids", control.text)
        for name in names:
            kind = _kind(path, name)
            unknown = {**own_ids, name: new_id(own[kind].split("_", 1)[0])}
            expected, _ = arena.run(
                _probe(arena, _request(arena, method, path, unknown, headers, own))
            )
            assert expected.status_code == 404, (credential, name, expected.text)
            assert _body(expected)["code"] == "NOT_FOUND"
            for whose, ids in _foreign_worlds(arena, path).items():
                foreign = {**own_ids, name: ids[kind]}
                answer, changed = arena.run(
                    _probe(arena, _request(arena, method, path, foreign, headers, own))
                )
                context = (credential, f"{whose}'s {name}")
                assert answer.status_code == 404, (*context, answer.text)
                assert _body(answer) == _body(expected), context
                assert changed == [], (*context, "changed", changed)
    assert accepted, f"no credential of program A may call {method.upper()} {path}"


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def test_the_matrix_and_the_world_agree(arena: Arena) -> None:
    """Both programs have every kind of object, and none of their ids coincide."""
    assert set(arena.a.ids) == set(arena.b.ids)
    assert not set(arena.a.ids.values()) & set(arena.b.ids.values())
    assert json.dumps(arena.app.openapi(), sort_keys=True) == json.dumps(document(), sort_keys=True)
