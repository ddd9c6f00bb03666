"""An app serving the lean path (authorizations/lean.py) from its own asyncpg pool, as a server
process does, for the tests that drive it (test_lean, test_together); and the messages they send."""

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from cardcore.app import create_app
from cardcore.config import Settings
from tests.authorizations.network import authorization
from tests.factories import World, new_world

PATH = "/v1/network/authorizations"


def follow_up_body(authorization_id: str, ids: str, amount: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "authorization_id": authorization_id,
        "network": {"network_transaction_id": ids},
    }
    return message if amount is None else {**message, "amount": amount}


async def own_pool(
    committed_app: FastAPI, settings: Settings, name: str, *funding: int
) -> tuple[FastAPI, World, str]:
    """Funded cards (one of 10,000 unless `funding` says otherwise), made on `committed_app`, and
    an app serving the lean path from its own pool; the first card's id."""
    world = await new_world(committed_app, name, funding or (10_000,))
    return (
        create_app(settings.model_copy(update={"run_worker": False})),
        world,
        world.card.id,
    )


async def warm_up(c: AsyncClient, world: World, card: str, name: str) -> dict[str, Any]:
    """Three authorizations: the key, the network account, the connection's types learnt."""
    for n in (1, 2, 3):
        warm = authorization(card, 100, f"{name}-warm-{n}")
        answer = (await c.post(PATH, json=warm, headers=world.network.headers)).json()
        assert answer["approved"]
    return answer  # type: ignore[no-any-return]


async def close(app: FastAPI) -> None:
    await app.state.lean_connections.close()
    await app.state.sessionmaker.kw["bind"].dispose()
