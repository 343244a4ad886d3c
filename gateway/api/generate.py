"""POST /v1/generate: {model, prompt, max_tokens} -> text, model, usage, cost, balance."""

from __future__ import annotations

import orjson
from starlette.datastructures import Headers

from billing.pricing import usd
from gateway.api.endpoint import Reply, metered
from gateway.dialects.openai import usage_body
from gateway.errors import bad_request
from gateway.proxy.admission import admit
from gateway.proxy.core import Core
from gateway.proxy.receipts import cost_headers
from gateway.proxy.serving import complete
from gateway.proxy.settlement import message_texts
from gateway.proxy.validation import parse_body


async def generate(core: Core, headers: Headers, raw: bytes) -> Reply:
    body = parse_body(raw)
    prompt = body.get("prompt")
    if prompt is None:
        raise bad_request("Missing required parameter: 'prompt'.", param="prompt", code="missing")
    if not isinstance(prompt, str) or not prompt:
        raise bad_request(
            "'prompt' must be a non-empty string.", param="prompt", code="invalid_type"
        )
    chat = {"model": body.get("model"), "messages": [{"role": "user", "content": prompt}]}
    if body.get("max_tokens") is not None:
        chat["max_tokens"] = body["max_tokens"]
    admitted = await admit(core, headers, chat)
    answered = await complete(core, admitted)
    result, settled = answered.result, answered.settled
    choices = result.body.get("choices") or [{}]
    reply = {
        "id": admitted.request_id,
        "model": admitted.model.model_id,
        "text": "".join(message_texts(result)),
        "finish_reason": choices[0].get("finish_reason"),
        "usage": usage_body(settled.charge, settled.prices),
        "cost_usd": usd(settled.cost),
        "balance_usd": usd(settled.balance),
    }
    return orjson.dumps(reply), cost_headers(admitted, settled)


routes = [metered("/v1/generate", generate)]
