from httpx import ASGITransport, AsyncClient

from cardcore.app import create_app
from cardcore.config import Settings
from cardcore.db import create_engine, create_sessionmaker


async def test_ping(client: AsyncClient) -> None:
    response = await client.get("/v1/ping")
    assert response.status_code == 200
    assert response.json() == {"data": {"status": "Service is up and running!"}}


async def test_ready_when_the_database_answers(client: AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"data": {"status": "ready"}}


async def test_not_ready_when_the_database_is_unreachable(settings: Settings) -> None:
    dead = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none", settings)
    app = create_app(settings, sessionmaker=create_sessionmaker(dead))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/health/ready")
    await dead.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "SERVICE_UNAVAILABLE"
    assert body["request_id"] == response.headers["X-Request-Id"]


async def test_metrics_count_requests_by_route_template(client: AsyncClient) -> None:
    await client.get("/v1/ping")
    await client.get("/v1/api-keys/key_doesnotexist")
    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'cardcore_http_requests_total{method="GET",route="/v1/ping",status="200"}' in text
    # The template, not the raw path: ids must not explode the label space.
    assert 'route="/v1/api-keys/{key_id}",status="401"' in text
    assert "cardcore_http_request_duration_seconds_bucket" in text


async def test_openapi_documents_security_and_error_shape(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert "ErrorResponse" in spec["components"]["schemas"]
    create_key = spec["paths"]["/v1/api-keys"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create_key["parameters"])
    assert "IDEMPOTENCY_KEY_IN_PROGRESS" in create_key["responses"]["409"]["description"]
    assert (await client.get("/docs")).status_code == 200


async def test_openapi_offers_all_four_ways_in(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert {(s["type"], s.get("in"), s.get("name"), s.get("scheme")) for s in schemes.values()} == {
        ("apiKey", "header", "X-API-Key", None),
        ("http", None, None, "bearer"),
        ("apiKey", "header", "X-Auth-Token", None),
        ("apiKey", "header", "X-JWS-Signature", None),
    }
    events = spec["paths"]["/v1/events"]["get"]["security"]
    assert {name for requirement in events for name in requirement} == set(schemes)
