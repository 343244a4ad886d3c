"""The app factory: a Starlette app built from a Settings object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from billing.tokens import TokenCounter
from gateway.api import admin, generate, health, openai
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
) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(settings, admin_key, counter) as services:
            app.state.services = services
            yield

    return Starlette(
        routes=[*openai.routes, *generate.routes, *admin.routes, *health.routes],
        exception_handlers={
            GatewayError: handle_gateway_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
