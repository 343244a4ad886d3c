"""GET /admin/activity: this instance's last hour, minute by minute (requests,
errors, spend), with the busiest models and providers and the providers
cooling down: what the console's overview draws."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.admin.changes import admin_services
from gateway.api.endpoint import JSON


async def activity(request: Request) -> Response:
    services = admin_services(request)
    return JSON({**services.metrics.activity.report(), "cooling_down": services.cooldowns.status()})


routes = [Route("/admin/activity", activity, methods=["GET"])]
