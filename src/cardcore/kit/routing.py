"""The route class every cardcore router uses: where the per-request conventions are applied.

- Every POST gets the `Idempotency-Key` guard (and the header in its OpenAPI docs).
- Every mutating call leaves an audit row; on success its idempotency record is stored too. Both
  are flushed into the request's transaction before the session dependency commits it.
"""

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.params import Depends
from fastapi.routing import APIRoute
from starlette.responses import Response

from cardcore.kit import audit
from cardcore.kit.idempotency import IdempotencyGuard, store_response


class CardcoreRoute(APIRoute):
    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: set[str] | list[str] | None = None,
        dependencies: Sequence[Depends] | None = None,
        **kwargs: Any,
    ) -> None:
        dependencies = list(dependencies or [])
        if methods and "POST" in {m.upper() for m in methods}:
            dependencies.append(IdempotencyGuard)
        super().__init__(path, endpoint, methods=methods, dependencies=dependencies, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.methods & audit.MUTATING_METHODS:
            return handler

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                # Failed before the session dependency existed (an unreadable body, say): the
                # dependency cannot record it, so record it here in a transaction of its own.
                if getattr(request.state, "session", None) is None:
                    async with request.app.state.sessionmaker() as session:
                        await audit.record_failure(session, request, exc)
                raise
            session = getattr(request.state, "session", None)
            if session is not None:
                await store_response(session, request, response)
                await audit.record_success(session, request, response)
            return response

        return handle


def router(**kwargs: Any) -> APIRouter:
    return APIRouter(route_class=CardcoreRoute, **kwargs)
