"""The part of the OpenAPI document (`gateway.api.openapi`) for the Responses
API, /v1/responses (`gateway.api.responses`): the request the gateway takes,
the response object it builds, and the routes of a stored response, which all
answer 404 since none is kept."""

from __future__ import annotations

from typing import Any

from gateway.api.openapi_v1 import REQUEST_ID_HEADER

_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_COUNT = {"type": "integer", "minimum": 0}
_ITEMS = {"type": "array", "items": {"type": "object"}}
_ERROR = {"$ref": "#/components/schemas/Error"}

SCHEMAS: dict[str, Any] = {
    "ResponsesRequest": {
        "type": "object",
        "description": "OpenAI's Responses request; any field not listed is refused by name "
        "(400 unsupported_parameter), as are previous_response_id, conversation, "
        "background: true and store: true: the gateway keeps no responses.",
        "properties": {
            "model": {"type": "string", "description": "a model, or `auto` / a preset"},
            "input": {
                "oneOf": [{"type": "string"}, {**_ITEMS, "minItems": 1}],
                "description": "items: message (roles user, assistant, system, developer; "
                "parts input_text, input_image with image_url, output_text, refusal), "
                "function_call, function_call_output, reasoning (dropped)",
            },
            "instructions": _STRING,
            "tools": {**_ITEMS, "description": "function tools only"},
            "tool_choice": {"oneOf": [{"enum": ["none", "auto", "required"]}, {"type": "object"}]},
            "parallel_tool_calls": {"type": "boolean"},
            "max_output_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "text": {"type": "object", "description": "format: text, json_object, json_schema"},
            "reasoning": {"type": "object", "description": "`effort` is carried"},
            "metadata": {
                "type": "object",
                "maxProperties": 16,
                "additionalProperties": {"type": "string", "maxLength": 512},
            },
            "user": _STRING,
            "stream": {"type": "boolean"},
            "service_tier": _STRING,
            "prompt_cache_key": _STRING,
            "safety_identifier": _STRING,
            "store": {"const": False},
            "background": {"const": False},
            "include": {"type": "array", "items": _STRING, "description": "ignored"},
            "truncation": {"enum": ["auto", "disabled"], "description": "ignored"},
            "stream_options": {"type": "object", "description": "ignored"},
        },
        "required": ["model", "input"],
        "additionalProperties": False,
    },
    "ResponseUsage": {
        "type": "object",
        "properties": {
            "input_tokens": _COUNT,
            "input_tokens_details": {"type": "object"},
            "output_tokens": _COUNT,
            "output_tokens_details": {"type": "object"},
            "total_tokens": _COUNT,
            "cost": {"type": "number", "description": "USD charged, exact digits"},
            "cost_details": {"type": "object"},
        },
        "required": [
            "input_tokens",
            "input_tokens_details",
            "output_tokens",
            "output_tokens_details",
            "total_tokens",
            "cost",
            "cost_details",
        ],
    },
    "ResponseObject": {
        "type": "object",
        "description": "A response: `resp_` + the request's id; the request's settings "
        "repeated, `store` always false. Streamed, it comes in `response.created` and last "
        "in `response.completed` or `response.incomplete`, which carries the usage.",
        "properties": {
            "id": _STRING,
            "object": {"const": "response"},
            "created_at": {"type": "integer"},
            "status": {"enum": ["in_progress", "completed", "incomplete"]},
            "background": {"const": False},
            "error": {"type": "null"},
            "incomplete_details": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {"reason": {"enum": ["max_output_tokens", "content_filter"]}},
                    },
                ]
            },
            "instructions": _NULLABLE_STRING,
            "max_output_tokens": {"type": ["integer", "null"]},
            "model": {"type": "string", "description": "the model that answered"},
            "output": {**_ITEMS, "description": "a message item, function_call items"},
            "parallel_tool_calls": {"type": "boolean"},
            "previous_response_id": {"type": "null"},
            "reasoning": {"type": ["object", "null"]},
            "store": {"const": False},
            "temperature": _NULLABLE_NUMBER,
            "text": {"type": "object"},
            "tool_choice": {"oneOf": [{"type": "string"}, {"type": "object"}]},
            "tools": _ITEMS,
            "top_p": _NULLABLE_NUMBER,
            "truncation": {"const": "disabled"},
            "usage": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/ResponseUsage"}]},
            "user": _NULLABLE_STRING,
            "metadata": {"type": "object", "additionalProperties": _STRING},
        },
        "required": [
            "id",
            "object",
            "created_at",
            "status",
            "model",
            "output",
            "parallel_tool_calls",
            "tool_choice",
            "tools",
            "usage",
        ],
    },
}


def _answer(description: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "headers": REQUEST_ID_HEADER, "content": content}


def _error(description: str) -> dict[str, Any]:
    return _answer(description, {"application/json": {"schema": _ERROR}})


_ID = {"name": "response_id", "in": "path", "required": True, "schema": _STRING}
_NOT_KEPT = {
    "summary": "A stored response: none is kept, so always 404 response_not_found",
    "security": [{"gatewayKey": []}],
    "parameters": [_ID],
    "responses": {
        "401": _error("invalid_api_key"),
        "404": _error("response_not_found: the gateway keeps no responses"),
    },
}

PATHS: dict[str, Any] = {
    "/v1/responses": {
        "post": {
            "operationId": "create_response",
            "summary": "A Responses request, translated to chat, metered and routed like one",
            "security": [{"gatewayKey": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/ResponsesRequest"}
                    }
                },
            },
            "responses": {
                "200": _answer(
                    "the response, with x-gateway-cost-usd; or, with `stream: true`, its "
                    "typed events, each with a sequence_number",
                    {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ResponseObject"}
                        },
                        "text/event-stream": {"schema": _STRING},
                    },
                ),
                **{
                    status: _error(description)
                    for status, description in [
                        ("400", "invalid_request_error, unsupported_parameter"),
                        ("401", "invalid_api_key"),
                        ("402", "insufficient_quota, key_spend_cap_reached"),
                        ("403", "model_not_allowed"),
                        ("404", "model_not_found"),
                        ("429", "rate_limit_exceeded"),
                        ("502", "upstream_error"),
                    ]
                },
            },
        }
    },
    "/v1/responses/{response_id}": {
        "get": {"operationId": "retrieve_response", **_NOT_KEPT},
        "delete": {"operationId": "delete_response", **_NOT_KEPT},
    },
    "/v1/responses/{response_id}/input_items": {
        "get": {"operationId": "list_response_input_items", **_NOT_KEPT}
    },
    "/v1/responses/{response_id}/cancel": {"post": {"operationId": "cancel_response", **_NOT_KEPT}},
}
