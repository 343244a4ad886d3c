"""Admin routes (Authorization: Bearer <admin key>): cache stats and refresh."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.openai import JSON, services_of
from gateway.auth import is_admin
from gateway.errors import invalid_api_key
from gateway.services import Services


def admin_services(request: Request) -> Services:
    services = services_of(request)
    if not is_admin(request.headers, services.admin_key):
        raise invalid_api_key("Admin endpoints need 'Authorization: Bearer <admin key>'.")
    return services


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
