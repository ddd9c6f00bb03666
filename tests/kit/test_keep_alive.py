"""A 500 answers the request that failed and nothing else: the caller's keep-alive connection
stays open for its next request. Starlette re-raised the failure after sending the 500, and
uvicorn answers an exception after a response by closing the connection, so one failed request
cost every pooled client its connection. Checked on a real uvicorn server, both HTTP stacks."""

import threading
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from cardcore.app import create_app
from cardcore.config import Settings
from cardcore.health import endpoints as health


class Serving:
    def __init__(self, app: Any, http: str) -> None:
        # Which client connection (its port) each request arrived on.
        self.client_ports: list[int] = []

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.client_ports.append(scope["client"][1])
            await app(scope, receive, send)

        config = uvicorn.Config(
            recording, host="127.0.0.1", port=0, http=http, log_config=None, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                break
            threading.Event().wait(0.01)
        assert self.server.started, "uvicorn did not start"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def app(settings_for_tests: Settings) -> FastAPI:
    # Its own engine (uvicorn runs its own event loop); no worker beside it.
    return create_app(settings_for_tests.model_copy(update={"run_worker": False}))


@pytest.fixture
def failing_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    """`GET /v1/ping` fails as a bug would, with an exception no handler expects; the other
    health routes go on working."""
    status = health.Status

    def broken_on_ping(**fields: Any) -> Any:
        if fields.get("status", "").startswith("Service is up"):
            raise RuntimeError("a bug")
        return status(**fields)

    monkeypatch.setattr(health, "Status", broken_on_ping)


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_a_500_keeps_the_connection(app: FastAPI, failing_ping: None, http: str) -> None:
    serving = Serving(app, http)
    with serving as base, httpx.Client(base_url=base) as client:
        assert client.get("/health/live").status_code == 200
        failed = client.get("/v1/ping", headers={"X-Request-Id": "boom-1"})
        assert failed.status_code == 500
        assert failed.json()["code"] == "INTERNAL_ERROR"
        assert failed.json()["request_id"] == failed.headers["X-Request-Id"] == "boom-1"
        assert failed.headers.get("connection", "").lower() != "close"
        answers = [client.get(path).status_code for path in ("/health/live", "/v1/ping") * 2]
    assert answers == [200, 500, 200, 500]
    # One connection carried all six requests.
    assert len(serving.client_ports) == 6
    assert len(set(serving.client_ports)) == 1, serving.client_ports
