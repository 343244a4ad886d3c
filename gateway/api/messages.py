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

POST /v1/messages/count_tokens answers `{"input_tokens": N}`: the prompt as
the gateway counts it for the model (the same count its holds are made of),
with no hold, no charge and no ledger row; it counts as a request against the
key's requests-per-minute limit.
"""

from __future__ import annotations

import orjson
from starlette.datastructures import Headers

from gateway.api.endpoint import Reply, metered
from gateway.autoroute.decision import preset_of
from gateway.dialects.anthropic import to_message
from gateway.dialects.anthropic_request import to_chat
from gateway.dialects.anthropic_stream import AnthropicFraming
from gateway.errors import bad_request
from gateway.observe import current
from gateway.proxy.admission import admit, chat_prompt_counter, requested_model
from gateway.proxy.auth import authenticate
from gateway.proxy.core import Core
from gateway.proxy.ratelimit import key_limits
from gateway.proxy.receipts import cost_headers
from gateway.proxy.serving import complete, open_stream
from gateway.proxy.streaming import MeteredStream
from gateway.proxy.validation import parse_body, validate_count_tokens, validate_messages


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


async def count_tokens(core: Core, headers: Headers, raw: bytes) -> Reply:
    body = parse_body(raw)
    validate_count_tokens(body)
    key, _ = authenticate(headers, core.cache.snapshot)
    name = body["model"]
    if preset_of(name) is not None:
        raise bad_request(
            f"'{name}' chooses a model per request, and the count depends on the model's "
            "tokenizer: name a model.",
            param="model",
            code="unsupported_model",
        )
    model = requested_model(core, name, "chat", key)
    core.limiter.admit(key_limits(key, 0))
    chat = to_chat(body)
    prompt_of = await chat_prompt_counter(core, chat, chat["messages"])
    record = current()
    if record is not None:
        record.key_prefix, record.model = key.prefix, model.model_id
    return orjson.dumps({"input_tokens": prompt_of(model)}), {}


routes = [
    metered("/v1/messages", messages, dialect="anthropic"),
    metered("/v1/messages/count_tokens", count_tokens, dialect="anthropic"),
]
