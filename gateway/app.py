"""The app factory: a Starlette app built from a Settings object, behind a
pure-ASGI dispatcher that sends the metered POST routes straight to their
endpoints (they answer their own errors and bound their own bodies, and mint
their request's id), past Starlette's middleware and router, which every other
request goes through: the dispatcher gives each of those an id too, notes it
(and the dialect its errors speak) on the scope for the error handlers, and
names it in the answer's headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from billing.tokens import TokenCounter
from gateway.api import account, generate, health, messages, openai, openapi, responses
from gateway.api.admin import (
    activity,
    alerts,
    budgets,
    cache,
    discovery,
    history,
    ledger_export,
    models,
    prices,
    providers,
    router,
    usage,
    users,
)
from gateway.api.endpoint import ApiEndpoint
from gateway.console import routes as console
from gateway.edge.request_body import BodyLimit
from gateway.edge.tags import DIALECT, REQUEST_ID, Dialect, id_headers, sending_headers
from gateway.errors import (
    GatewayError,
    handle_gateway_error,
    handle_http_exception,
    handle_unexpected,
)
from gateway.proxy.ids import RequestIds
from gateway.services import Services, running
from gateway.settings import Settings


def create_app(
    settings: Settings, *, admin_key: str, counter: TokenCounter | None = None
) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(settings, admin_key, counter) as services:
            app.state.services = services
            yield

    app = Starlette(
        routes=[
            *openai.routes,
            *messages.routes,
            *responses.routes,
            *generate.routes,
            *account.routes,
            *cache.routes,
            *router.routes,
            *budgets.routes,
            *alerts.routes,
            *models.routes,
            *prices.routes,
            *discovery.routes,
            *providers.routes,
            *users.routes,
            *ledger_export.routes,
            *usage.routes,
            *openapi.routes,
            *history.routes,
            *health.routes,
            *activity.routes,
            *console.routes,
        ],
        exception_handlers={
            GatewayError: handle_gateway_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        middleware=[Middleware(BodyLimit, max_bytes=settings.max_body_bytes)],
        lifespan=lifespan,
    )
    fast = {
        route.path: route.endpoint
        for route in app.routes
        if isinstance(route, Route)
        and isinstance(route.endpoint, ApiEndpoint)
        and "POST" in (route.methods or ())
    }
    return FastPaths(app, fast)


class FastPaths:
    def __init__(self, app: Starlette, endpoints: Mapping[str, ApiEndpoint]) -> None:
        self.app = app
        self._endpoints = dict(endpoints)
        # Whatever method reaches an Anthropic route is answered in Anthropic's shape.
        self._anthropic = frozenset(p for p, e in endpoints.items() if e.dialect == "anthropic")
        self._spare_ids = RequestIds()  # only before the lifespan has built the services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST":
            endpoint = self._endpoints.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self.app  # where the endpoint finds app.state
                await endpoint(scope, receive, send)
                return
        services: Services | None = getattr(self.app.state, "services", None)
        request_id = (services.request_ids if services else self._spare_ids).next()
        dialect = self._dialect(scope)
        scope[REQUEST_ID], scope[DIALECT] = request_id, dialect
        headers = [(k.encode(), v.encode()) for k, v in id_headers(request_id, dialect).items()]
        await self.app(scope, receive, sending_headers(send, headers))

    def _dialect(self, scope: Scope) -> Dialect:
        """Anthropic's on its routes, and on any /v1 route its SDK calls (the models)."""
        path: str = scope["path"]
        if path in self._anthropic:
            return "anthropic"
        if path.startswith("/v1/") and any(k == b"anthropic-version" for k, _ in scope["headers"]):
            return "anthropic"
        return "openai"
