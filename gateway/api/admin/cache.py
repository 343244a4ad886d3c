"""Admin routes for the configuration cache: its stats and a refresh."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.admin.changes import admin_services
from gateway.api.endpoint import JSON


async def cache_stats(request: Request) -> Response:
    services = admin_services(request)
    return JSON({**services.cache.stats(), "cooling_down": services.cooldowns.status()})


async def cache_refresh(request: Request) -> Response:
    cache = admin_services(request).cache
    refreshed = await cache.refresh()
    return JSON({"refreshed": refreshed, **cache.stats()}, status_code=200 if refreshed else 503)


routes = [
    Route("/admin/cache/stats", cache_stats, methods=["GET"]),
    Route("/admin/cache/refresh", cache_refresh, methods=["POST"]),
]
