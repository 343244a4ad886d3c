"""POST /admin/sync runs model discovery now (409 while one runs);
GET /admin/sync shows the last run per provider and the next one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.admin.changes import admin_services
from gateway.api.endpoint import JSON
from gateway.errors import GatewayError
from gateway.ops.discovery import DiscoveryBusy


async def run_sync(request: Request) -> Response:
    services = admin_services(request)
    try:
        results = await services.discovery.run()
    except DiscoveryBusy:
        raise GatewayError(409, "A sync is already running.", code="sync_running") from None
    return JSON({"data": results, **services.discovery.health()})


async def sync_status(request: Request) -> Response:
    return JSON(admin_services(request).discovery.health())


routes = [
    Route("/admin/sync", run_sync, methods=["POST"]),
    Route("/admin/sync", sync_status, methods=["GET"]),
]
