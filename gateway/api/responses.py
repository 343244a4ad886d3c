"""POST /v1/responses: the OpenAI Responses API inbound. The request is checked
(`gateway.proxy.validation.responses`), translated to an internal chat request
(`gateway.dialects.responses_request`), metered and routed like any other (to
any provider, or `auto`), and the answer translated back: a `response` object
(`gateway.dialects.responses`) or the typed stream events
(`gateway.dialects.responses_stream`).

The gateway keeps no responses: `GET /v1/responses/{id}` answers 404, and a
request that would continue or store one is refused (see the validation).
"""

from __future__ import annotations

import time

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.endpoint import Reply, metered, services_of
from gateway.dialects.responses import settings, to_response
from gateway.dialects.responses_request import to_chat
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
    echoed = settings(body)
    chat = to_chat(body)
    admitted = await admit(core, headers, chat)
    created_at = int(time.time())
    if chat.get("stream") is True:
        stream = await open_stream(core, admitted)
        framing = ResponsesFraming(
            request_id=admitted.request_id,
            model=admitted.model.model_id,
            created_at=created_at,
            echoed=echoed,
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
        echoed=echoed,
        charge=settled.charge,
        prices=settled.prices,
    )
    return orjson.dumps(reply), cost_headers(admitted, settled)


async def retrieve(request: Request) -> Response:
    """Responses are not kept: a valid key learns so, with the id it asked for."""
    services = services_of(request)
    authenticate(request.headers, services.cache.snapshot)
    raise GatewayError(
        404,
        f"No response with id '{request.path_params['response_id'][:100]}': the gateway "
        "does not keep responses.",
        param="response_id",
        code="response_not_found",
    )


routes = [
    metered("/v1/responses", responses),
    Route("/v1/responses/{response_id}", retrieve, methods=["GET"]),
]
