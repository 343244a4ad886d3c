"""The OpenAI-compatible routes: /v1/chat/completions, /v1/embeddings, /v1/models."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.pricing import usd
from gateway.api.endpoint import JSON, Reply, metered, services_of
from gateway.dialects.openai import OpenAIFraming
from gateway.proxy.pipeline import (
    admit,
    admit_completion,
    admit_embedding,
    complete,
    cost_headers,
    embed,
    open_stream,
    open_text_completion_stream,
    text_completion,
    usage_body,
)
from gateway.proxy.streaming import MeteredStream
from gateway.proxy.validation import parse_body
from gateway.services import Services


def wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


async def chat_completions(services: Services, headers: Headers, raw: bytes) -> Reply:
    body = parse_body(raw)
    admitted = await admit(services, headers, body)
    if body.get("stream") is True:
        stream = await open_stream(services, admitted)
        return MeteredStream(
            services,
            admitted,
            stream,
            framing=OpenAIFraming(
                request_id=admitted.request_id,
                model=admitted.model.model_id,
                include_usage=wants_usage(body),
            ),
            headers=cost_headers(admitted),
        )
    result, settled = await complete(services, admitted)
    result.body["usage"] = usage_body(settled.usage, settled.cost)
    return orjson.dumps(result.body), cost_headers(admitted, settled)


async def list_models(request: Request) -> Response:
    snapshot = services_of(request).cache.snapshot
    data = [
        {
            "id": model.model_id,
            "object": "model",
            "created": int(model.created_at.timestamp()),
            "owned_by": model.provider,
            "context_window": model.context_window_size,
        }
        for model in snapshot.active_models
    ]
    return JSON({"object": "list", "data": data})


async def embeddings(services: Services, headers: Headers, raw: bytes) -> Reply:
    admitted = await admit_embedding(services, headers, parse_body(raw))
    result, settled = await embed(services, admitted)
    result.body["usage"] = {
        "prompt_tokens": settled.usage.prompt_tokens,
        "total_tokens": settled.usage.prompt_tokens,
        "cost": usd(settled.cost),
    }
    return orjson.dumps(result.body), cost_headers(admitted, settled)


async def completions(services: Services, headers: Headers, raw: bytes) -> Reply:
    """The legacy text completions endpoint, for models whose mode is "completion"."""
    body = parse_body(raw)
    admitted = await admit_completion(services, headers, body)
    if body.get("stream") is True:
        stream = await open_text_completion_stream(services, admitted)
        framing = OpenAIFraming(
            request_id=admitted.request_id,
            model=admitted.model.model_id,
            include_usage=wants_usage(body),
            chunk_object="text_completion",
        )
        return MeteredStream(
            services, admitted, stream, framing=framing, headers=cost_headers(admitted)
        )
    result, settled = await text_completion(services, admitted)
    result.body["usage"] = usage_body(settled.usage, settled.cost)
    return orjson.dumps(result.body), cost_headers(admitted, settled)


routes = [
    metered("/v1/chat/completions", chat_completions),
    metered("/v1/completions", completions),
    metered("/v1/embeddings", embeddings),
    Route("/v1/models", list_models, methods=["GET"]),
]
