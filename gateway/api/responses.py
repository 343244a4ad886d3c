"""POST /v1/responses: OpenAI's Responses format inbound, so
`client.responses.create(...)` works against the gateway. The request is
translated to an OpenAI chat request (`gateway.dialects.responses_request`),
metered and routed like any other (to any provider, `auto` included), and the
answer translated back: a response object (`gateway.dialects.responses`), or
the Responses stream events (`gateway.dialects.responses_stream`).

The key is checked first (no key, 401, whatever the body), then the whole
Responses shape (`gateway.proxy.validation.responses`), and only then is
anything translated. The gateway keeps no responses: the routes that would read
or change a stored one answer 404 and say so.
"""

from __future__ import annotations

import time

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.endpoint import Reply, metered, services_of
from gateway.dialects.responses import to_response
from gateway.dialects.responses_request import echoed, to_chat
from gateway.dialects.responses_stream import ResponsesFraming
from gateway.errors import GatewayError
from gateway.proxy.admission import admit
from gateway.proxy.auth import authenticate
from gateway.proxy.core import Core
from gateway.proxy.receipts import cost_headers
from gateway.proxy.serving import complete, open_stream
from gateway.proxy.streaming import MeteredStream
from gateway.proxy.validation import parse_body
from gateway.proxy.validation.responses import validate_responses


async def responses(core: Core, headers: Headers, raw: bytes) -> Reply:
    body = parse_body(raw)
    validate_responses(body)
    chat = to_chat(body)
    admitted = await admit(core, headers, chat)
    created_at = int(time.time())
    if chat.get("stream") is True:
        stream = await open_stream(core, admitted)
        # Built once the stream is open: the model that serves it is known.
        framing = ResponsesFraming(
            request_id=admitted.request_id,
            model=admitted.model.model_id,
            created_at=created_at,
            echo=echoed(body),
        )
        return MeteredStream(
            core, admitted, stream, framing=framing, headers=cost_headers(admitted)
        )
    answered = await complete(core, admitted)
    settled = answered.settled
    reply = to_response(
        answered.result.body,
        request_id=admitted.request_id,
        model=admitted.model.model_id,
        created_at=created_at,
        echo=echoed(body),
        charge=settled.charge,
        prices=settled.prices,
    )
    return orjson.dumps(reply), cost_headers(admitted, settled)


async def not_kept(request: Request) -> Response:
    """A stored response, read, deleted or cancelled: 404, none is kept."""
    authenticate(request.headers, services_of(request).cache.snapshot)
    response_id = request.path_params["response_id"]
    raise GatewayError(
        404,
        f"No response '{response_id}': the gateway does not keep responses. "
        "Read each response as it is answered, and send the whole conversation in 'input'.",
        param="response_id",
        code="response_not_found",
    )


routes = [
    metered("/v1/responses", responses),
    Route("/v1/responses/{response_id}", not_kept, methods=["GET", "DELETE"]),
    Route("/v1/responses/{response_id}/input_items", not_kept, methods=["GET"]),
    Route("/v1/responses/{response_id}/cancel", not_kept, methods=["POST"]),
]
