"""The FastAPI application: routers, middleware, error handlers, database wiring."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore import __version__
from cardcore.admin.endpoints import routes as admin_routes
from cardcore.auth.endpoints import routes as auth_routes
from cardcore.authorizations.endpoints import admin_routes as fx_routes
from cardcore.authorizations.endpoints import network_routes, simulate_routes
from cardcore.authorizations.endpoints import routes as transactions_routes
from cardcore.authorizations.lean import AuthorizationLane, Connections
from cardcore.balances.endpoints import admin_routes as money_admin_routes
from cardcore.balances.endpoints import routes as balances_routes
from cardcore.cards.balance_move_endpoints import routes as card_balance_move_routes
from cardcore.cards.controls_endpoints import routes as card_controls_routes
from cardcore.cards.dependencies import build_card_services
from cardcore.cards.endpoints import admin_routes as card_admin_routes
from cardcore.cards.endpoints import routes as cards_routes
from cardcore.cards.lifecycle_endpoints import routes as card_lifecycle_routes
from cardcore.cards.physical_request_endpoints import routes as physical_request_routes
from cardcore.cards.report_endpoints import routes as card_report_routes
from cardcore.cards.three_ds_endpoints import routes as three_ds_routes
from cardcore.config import Settings, get_settings
from cardcore.customers.endpoints import admin_routes as review_routes
from cardcore.customers.endpoints import reference_routes
from cardcore.customers.endpoints import routes as customers_routes
from cardcore.db import create_engine, create_sessionmaker, database_url
from cardcore.encryption.endpoints import routes as encryption_routes
from cardcore.events.endpoints import routes as events_routes
from cardcore.fees.endpoints import admin_routes as fee_admin_routes
from cardcore.fees.endpoints import routes as fee_routes
from cardcore.health.endpoints import routes as health_routes
from cardcore.kit.crypto import load_keyring
from cardcore.kit.encryption import ENCRYPTION_KEYS
from cardcore.kit.errors import NotFound, catalog_markdown
from cardcore.kit.handlers import install_error_handlers, render_unexpected_error
from cardcore.kit.logging import configure_logging
from cardcore.kit.middleware import BodyLimitMiddleware, RequestContextMiddleware
from cardcore.kit.openapi import complete_responses
from cardcore.kit.server_keys import ServerKeys
from cardcore.kit.storage import EncryptedFileStorage
from cardcore.kit.tokens import TokenKeys
from cardcore.programs.endpoints import routes as programs_routes
from cardcore.webhooks.endpoints import routes as webhooks_routes

DESCRIPTION = f"""
cardcore is an issuer-side card management system: programs, cardholders, balances on a
double-entry ledger, cards and their lifecycle, spend controls, authorizations and webhooks.

**Conventions.** Amounts are integers in the currency's minor units with an ISO 4217 code.
Ids are prefixed by type (`prg_…`, `key_…`, `evt_…`). Successful responses are `{{"data": ...}}`;
lists add `{{"meta": {{"next_cursor": ..., "has_more": ...}}}}` — pass `?cursor=` to page. The one
exception: the card network's messages (`/v1/network/…`, and their sandbox twins under
`/v1/simulate/…`) answer bare objects — see the `network` tag.
Every POST accepts an `Idempotency-Key` header. Every response carries `X-Request-Id` (yours if
you sent one). Errors always have the same shape, with a stable `code`:

{catalog_markdown()}
"""

TAGS = [
    {
        "name": "auth",
        "description": "Partner credentials and tokens, cardholder sessions (`/v1/me`).",
    },
    {"name": "programs", "description": "The caller's program (tenant) and its API keys."},
    {
        "name": "customers",
        "description": "Cardholders (users) with KYC, corporations with KYB, identity documents.",
    },
    {
        "name": "balances",
        "description": "Balances on the double-entry ledger, reloads, partner balances, IBAN "
        "transfers.",
    },
    {
        "name": "cards",
        "description": "Products, issuance, the PAN vault, CVV2, PIN, activation, reveal.",
    },
    {"name": "reference", "description": "Countries and their subdivisions (ISO 3166)."},
    {"name": "events", "description": "The event outbox: everything that happened, in order."},
    {
        "name": "webhooks",
        "description": "Subscriptions, signed at-least-once delivery, logs, replay, the event "
        "type catalog.",
    },
    {
        "name": "encryption",
        "description": "JWE for sensitive requests and responses (RSA-OAEP-256 + A256GCM).",
    },
    {
        "name": "network",
        "description": "The card processor's messages, with a `network` credential: "
        "authorizations (PIN as an ISO 9564 PIN block under the program's zone PIN key), "
        "increments, reversals, clearings, force posts, refunds, balance inquiries. **Answers are "
        'bare objects, not `{"data": …}`**: each is the answer to one network message, kept as '
        "sent and returned byte for byte to a retransmission, and a processor maps its fields "
        "straight onto the scheme's message. Errors keep the one error shape.",
    },
    {"name": "admin", "description": "The issuer's ops staff: roles admin, manager, employee."},
    {
        "name": "simulation",
        "description": "Test mode: a test program's (`ck_test_`) partner credentials drive "
        "authorizations, clearings, refunds and hold expiry on its own cards. A live program's "
        "credentials are answered `403 TEST_MODE_ONLY`. Answers are bare objects, as the "
        "network's are.",
    },
    {"name": "health", "description": "Probes for load balancers and monitoring."},
]


# How long a server process runs before what its first requests built is frozen (see lifespan).
WARM_SECONDS = 60.0


def _freeze_warm() -> None:
    gc.collect()
    gc.freeze()


class CardcoreApp(FastAPI):
    """FastAPI's app, whose OpenAPI document also gives every operation's error answers."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = complete_responses(super().openapi())
        return self.openapi_schema


def create_app(
    settings: Settings | None = None,
    *,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> FastAPI:
    """Build the app. Tests pass a `sessionmaker` bound to their own connection; otherwise the
    app opens an engine on the configured (or embedded) PostgreSQL."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    engine: Any = None
    lean_connections = None
    if sessionmaker is None:
        url = database_url(settings)
        engine = create_engine(url, settings)
        sessionmaker = create_sessionmaker(engine)
        lean_connections = Connections(url, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # An app built on its own engine (not handed a sessionmaker by a test) runs the worker
        # beside the API unless told not to, so the embedded default needs one command.
        stop = asyncio.Event()
        worker = None
        if engine is not None and settings.run_worker:
            from cardcore.worker import run_worker

            worker = asyncio.create_task(
                run_worker(app.state.sessionmaker, app.state.keyring, settings, stop=stop)
            )
        # Everything made so far (modules, routes, schemas: hundreds of thousands of objects)
        # lives as long as the process. Frozen, the garbage collector stops walking it on every
        # full collection, which cost the authorization path a third of its CPU.
        gc.freeze()
        # The first requests build more that lives as long (each route's dependencies, models
        # and serializers, tens of thousands of objects): walked by every full collection, they
        # stopped the event loop for 50 ms or more every few seconds under load. Once warm,
        # they are frozen too, after a collection, so only what is alive then is kept (what of
        # it later ends in a reference cycle is never collected: the requests in flight then,
        # once — a bounded price for no more walks of the rest).
        warm = asyncio.get_running_loop().call_later(WARM_SECONDS, _freeze_warm)
        yield
        warm.cancel()
        stop.set()
        if worker is not None:
            await worker
        if lean_connections is not None:
            await lean_connections.close()
        if engine is not None:
            await engine.dispose()

    app = CardcoreApp(
        title="cardcore",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # FastAPI's own pages load their scripts from CDNs; add_api_docs serves /docs offline.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    add_api_docs(app)
    app.state.settings = settings
    app.state.sessionmaker = sessionmaker
    app.state.lean_connections = lean_connections
    app.state.keyring = load_keyring(settings)
    app.state.token_keys = TokenKeys(app.state.keyring, sessionmaker)
    app.state.card_services = build_card_services(settings, app.state.keyring)
    app.state.document_storage = EncryptedFileStorage(
        settings.data_dir / "documents", app.state.keyring
    )
    app.state.encryption_keys = ServerKeys(
        app.state.keyring,
        sessionmaker,
        grace=timedelta(seconds=settings.jwe_key_grace_seconds),
        **ENCRYPTION_KEYS,
    )
    # The last added is the outermost: the request id and the 500 answer wrap the body limit,
    # so even a refused body gets both; the authorization's lean path is within both.
    app.add_middleware(AuthorizationLane)
    app.add_middleware(
        BodyLimitMiddleware,
        json_limit=settings.max_json_body_bytes,
        upload_limit=settings.max_upload_body_bytes,
    )
    app.add_middleware(RequestContextMiddleware, on_error=render_unexpected_error)
    install_error_handlers(app)
    for routes in (
        health_routes,
        encryption_routes,
        auth_routes,
        customers_routes,
        reference_routes,
        balances_routes,
        cards_routes,
        card_lifecycle_routes,
        card_controls_routes,
        card_report_routes,
        physical_request_routes,
        three_ds_routes,
        card_balance_move_routes,
        transactions_routes,
        network_routes,
        programs_routes,
        events_routes,
        webhooks_routes,
        admin_routes,
        review_routes,
        money_admin_routes,
        card_admin_routes,
        fx_routes,
        fee_routes,
        fee_admin_routes,
        simulate_routes,
    ):
        app.include_router(routes)
    return app


# What /docs loads, from the swagger-ui-bundle-v2 wheel (the official swagger-ui-dist files):
# issuers run cardcore on networks that reach no CDN. Only these are served: the dist's own
# index.html would fetch a demo API from the internet.
SWAGGER_UI_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


def add_api_docs(app: FastAPI) -> None:
    """`/docs`: Swagger UI over `/openapi.json`, every asset served by cardcore itself."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    assets_path = "/docs/swagger-ui"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{assets_path}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets_path}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets_path}/favicon-32x32.png",
            # Swagger UI would otherwise send the whole spec to an online validator.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(assets_path + "/{name}", include_in_schema=False)
    async def swagger_ui_asset(name: str) -> FileResponse:
        if name not in SWAGGER_UI_ASSETS:
            raise NotFound("file")
        return FileResponse(
            Path(str(swagger_ui_path)) / name,
            # The files change only when the wheel is upgraded; revalidate daily.
            headers={"Cache-Control": "public, max-age=86400"},
        )
