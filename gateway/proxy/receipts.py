"""What a client is told about its request's charge in the gateway's own headers,
whichever dialect it speaks."""

from __future__ import annotations

from billing.pricing import usd
from gateway.proxy.admitted import Admitted, Settled


def cost_headers(admitted: Admitted, settled: Settled | None = None) -> dict[str, str]:
    headers = {"x-request-id": admitted.request_id, "x-gateway-model": admitted.model.model_id}
    if admitted.route is not None:
        classification = admitted.route.classification
        headers["x-gateway-route-category"] = classification.category
        headers["x-gateway-route-complexity"] = classification.complexity
        headers["x-gateway-route-preset"] = admitted.route.preset
    if settled is not None:
        cost = usd(settled.cost)
        headers["x-gateway-cost-usd"] = cost
        # The litellm client takes this header's figure as the call's cost (rather
        # than pricing the call itself from its own price list).
        headers["x-litellm-response-cost"] = cost
        headers["x-gateway-balance-usd"] = usd(settled.balance)
    return headers
