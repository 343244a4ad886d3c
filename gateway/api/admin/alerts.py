"""Admin route for the alerts the gateway has sent (budget thresholds, low
balances): each delivery with its attempts, status and last error.

    GET /admin/alerts?limit=     newest first (100 by default, at most 1000)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.admin.changes import admin_services
from gateway.api.endpoint import JSON
from gateway.errors import bad_request, unavailable


async def list_alerts(request: Request) -> Response:
    services = admin_services(request)
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise bad_request("'limit' must be an integer from 1 to 1000.", param="limit")
    try:
        deliveries = await services.alert_log.recent(int(raw))
    except Exception as exc:  # the log's store (SQLite or Firestore) failed
        raise unavailable(
            f"The alert deliveries cannot be read now: {type(exc).__name__}", code="store_error"
        ) from exc
    return JSON(
        {
            "object": "list",
            "webhook_configured": bool(services.settings.alert_webhook_url),
            "data": [d.to_json() for d in deliveries],
        }
    )


routes = [Route("/admin/alerts", list_alerts, methods=["GET"])]
