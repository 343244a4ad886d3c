"""What a client is told about its request's charge: the gateway's headers on
every answer, and the usage object of an OpenAI-shaped body."""

from __future__ import annotations

from typing import Any

from billing.pricing import Usage, usd
from gateway.proxy.admitted import Admitted, Settled


def cost_headers(admitted: Admitted, settled: Settled | None = None) -> dict[str, str]:
    headers = {"x-request-id": admitted.request_id, "x-gateway-model": admitted.model.model_id}
    if admitted.route is not None:
        classification = admitted.route.classification
        headers["x-gateway-route-category"] = classification.category
        headers["x-gateway-route-complexity"] = classification.complexity
        headers["x-gateway-route-preset"] = admitted.route.preset
    if settled is not None:
        headers["x-gateway-cost-usd"] = usd(settled.cost)
        headers["x-gateway-balance-usd"] = usd(settled.balance)
    return headers


def usage_body(usage: Usage, cost: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cost": usd(cost),
    }
    if usage.cache_read_tokens:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    return body
