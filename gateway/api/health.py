"""GET /health: 200 while the gateway can serve paid requests, 503 while it cannot
(the store is unreachable, or the ledger cannot write its rows; on Firestore also
while this instance's view of the balances is stale or its outbox does not ship);
with the store's reachability, the snapshot's age and source, the ledger's state,
the providers cooling down and the model sync's status per provider, and on
Firestore the balance view and the outbox.
GET /metrics: Prometheus text format."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.endpoint import JSON, services_of


async def metrics(request: Request) -> Response:
    """Prometheus text format; no labels that name a user, key or raw path."""
    return Response(services_of(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def health(request: Request) -> Response:
    services = services_of(request)
    snapshot = services.cache.snapshot
    ledger = services.ledger.health()
    writing = services.ledger_ready and ledger.healthy
    serving = services.cache.store_ok and writing
    age = (datetime.now(UTC) - snapshot.loaded_at).total_seconds()
    body: dict[str, Any] = {
        "status": "ok",
        "store": {"source": snapshot.source, "reachable": services.cache.store_ok},
        "ledger": {
            "ready": services.ledger_ready,
            "writing": writing,
            "batches": services.ledger.batches,
            "rows": services.ledger.rows,
            **asdict(ledger),
        },
        "snapshot_age_seconds": round(age, 3),
        "active_models": len(snapshot.active_models),
        "listening": services.cache.listening,
        "cooling_down": services.cooldowns.status(),
        "sync": services.discovery.health(),
        "background": services.background.states(),
    }
    shared = services.store_state()
    if shared is not None and services.reach is not None:
        # Several instances: the store must answer, this instance's view of the
        # balances be fresh and its outbox ship, or paid requests are refused.
        serving = serving and shared.reachable and shared.view.refusal is None
        body["store"] = {**services.reach.stats(), **body["store"], "reachable": shared.reachable}
        body["balances"] = asdict(shared.view)
        body["outbox"] = asdict(shared.shipping)
    body["status"] = "ok" if serving else "degraded"
    return JSON(body, status_code=200 if serving else 503)


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
