"""The app factory: a Starlette app built from a Settings object, behind a
pure-ASGI dispatcher that sends the metered POST routes straight to their
endpoints (they answer their own errors and bound their own bodies), past
Starlette's middleware and router, which every other request goes through."""

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
    cache,
    discovery,
    history,
    models,
    prices,
    providers,
    router,
    usage,
    users,
)
from gateway.api.endpoint import ApiEndpoint
from gateway.edge.request_body import BodyLimit
from gateway.errors import (
    GatewayError,
    handle_gateway_error,
    handle_http_exception,
    handle_unexpected,
)
from gateway.services import running
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
            *models.routes,
            *prices.routes,
            *discovery.routes,
            *providers.routes,
            *users.routes,
            *usage.routes,
            *openapi.routes,
            *history.routes,
            *health.routes,
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._endpoints.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self.app  # where the endpoint finds app.state
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)
