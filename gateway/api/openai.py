"""The OpenAI-compatible routes: /v1/chat/completions, /v1/completions,
/v1/embeddings, and the models (`gateway.api.model_list`)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import Headers

from gateway.api import model_list
from gateway.api.endpoint import Reply, metered
from gateway.dialects.cost import cost_fields
from gateway.dialects.openai import OpenAIFraming, usage_body
from gateway.proxy.admission import admit, admit_completion, admit_embedding
from gateway.proxy.admitted import Answered
from gateway.proxy.core import Core
from gateway.proxy.receipts import cost_headers
from gateway.proxy.serving import (
    complete,
    embed,
    open_stream,
    open_text_completion_stream,
    text_completion,
)
from gateway.proxy.streaming import MeteredStream
from gateway.proxy.validation import parse_body


def wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


async def chat_completions(core: Core, headers: Headers, raw: bytes) -> Reply:
    body = parse_body(raw)
    admitted = await admit(core, headers, body)
    if body.get("stream") is True:
        stream = await open_stream(core, admitted)
        return MeteredStream(
            core,
            admitted,
            stream,
            framing=OpenAIFraming(
                request_id=admitted.request_id,
                model=admitted.model.model_id,
                include_usage=wants_usage(body),
            ),
            headers=cost_headers(admitted),
        )
    answered = await complete(core, admitted)
    return _with_usage(answered), cost_headers(admitted, answered.settled)


async def embeddings(core: Core, headers: Headers, raw: bytes) -> Reply:
    admitted = await admit_embedding(core, headers, parse_body(raw))
    answered = await embed(core, admitted)
    settled = answered.settled
    answered.result.body["usage"] = {
        "prompt_tokens": settled.usage.prompt_tokens,
        "total_tokens": settled.usage.prompt_tokens,
        **cost_fields(settled.charge, settled.prices),
    }
    return orjson.dumps(answered.result.body), cost_headers(admitted, settled)


async def completions(core: Core, headers: Headers, raw: bytes) -> Reply:
    """The legacy text completions endpoint, for models whose mode is "completion"."""
    body = parse_body(raw)
    admitted = await admit_completion(core, headers, body)
    if body.get("stream") is True:
        stream = await open_text_completion_stream(core, admitted)
        framing = OpenAIFraming(
            request_id=admitted.request_id,
            model=admitted.model.model_id,
            include_usage=wants_usage(body),
            chunk_object="text_completion",
        )
        return MeteredStream(
            core, admitted, stream, framing=framing, headers=cost_headers(admitted)
        )
    answered = await text_completion(core, admitted)
    return _with_usage(answered), cost_headers(admitted, answered.settled)


def _with_usage(answered: Answered) -> bytes:
    """The answer's body with its usage: the charged tokens and the cost."""
    settled = answered.settled
    answered.result.body["usage"] = usage_body(settled.charge, settled.prices)
    return orjson.dumps(answered.result.body)


routes = [
    metered("/v1/chat/completions", chat_completions),
    metered("/v1/completions", completions),
    metered("/v1/embeddings", embeddings),
    *model_list.routes,
]
