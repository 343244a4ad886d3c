"""POST /v1/messages: Anthropic's Messages format inbound, so the anthropic SDK
works against the gateway too. The request is translated to an OpenAI chat
request (`gateway.dialects.anthropic_request`), metered and routed like any
other (to any provider), and the answer translated back: a message
(`gateway.dialects.anthropic`), or Anthropic's stream events
(`gateway.dialects.anthropic_stream`).

The key is checked first (no key, 401, whatever the body), then the whole
Anthropic shape (`gateway.proxy.validation.messages`), and only then is anything
translated. Errors are Anthropic-shaped (`GatewayError.anthropic_body`), and
every answer names its id in Anthropic's `request-id` header besides
`x-request-id`.
"""

from __future__ import annotations

import orjson
from starlette.datastructures import Headers

from gateway.api.endpoint import Reply, metered
from gateway.dialects.anthropic import to_message
from gateway.dialects.anthropic_request import to_chat
from gateway.dialects.anthropic_stream import AnthropicFraming
from gateway.proxy.admission import admit
from gateway.proxy.core import Core
from gateway.proxy.receipts import cost_headers
from gateway.proxy.serving import complete, open_stream
from gateway.proxy.streaming import MeteredStream
from gateway.proxy.validation import parse_body, validate_messages


async def messages(core: Core, headers: Headers, raw: bytes) -> Reply:
    body = parse_body(raw)
    validate_messages(body)
    chat = to_chat(body)
    admitted = await admit(core, headers, chat)
    if chat.get("stream") is True:
        stream = await open_stream(core, admitted)
        # Built once the stream is open: the model that serves it is known.
        framing = AnthropicFraming(
            request_id=admitted.request_id,
            model=admitted.model.model_id,
            input_tokens=admitted.prompt_estimate,
        )
        answer_headers = {**cost_headers(admitted), "request-id": admitted.request_id}
        return MeteredStream(core, admitted, stream, framing=framing, headers=answer_headers)
    answered = await complete(core, admitted)
    settled = answered.settled
    reply = to_message(
        answered.result.body,
        request_id=admitted.request_id,
        model=admitted.model.model_id,
        charge=settled.charge,
        prices=settled.prices,
    )
    return orjson.dumps(reply), cost_headers(admitted, settled)


routes = [metered("/v1/messages", messages, dialect="anthropic")]
