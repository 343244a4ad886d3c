"""The part of the OpenAPI document (`gateway.api.openapi`) for the /v1 routes
whose answers are the gateway's own rather than a provider's: the models
endpoints and Anthropic's token count; and the two shapes of an error."""

from __future__ import annotations

from typing import Any

REQUEST_ID_HEADER = {
    "x-request-id": {
        "description": "The request's id; every error body repeats it as `request_id`.",
        "schema": {"type": "string"},
    }
}
_NULLABLE_STRING = {"type": ["string", "null"]}
_UNAVAILABLE = {
    "description": "why it cannot be served now (?all=true and GET /v1/models/{id} only)",
    "enum": [
        None,
        "needs_price",
        "provider_unknown",
        "provider_disabled",
        "provider_unreachable",
        "provider_not_configured",
        "no_servable_model",
    ],
}
_ERROR_FIELDS = {
    "message": {"type": "string"},
    "type": {"type": "string"},
    "param": _NULLABLE_STRING,
    "code": _NULLABLE_STRING,
}

_USD = {"type": "string", "description": "exact USD, nine decimal places"}
_USD_OR_NULL = {"type": ["string", "null"], "description": "exact USD; null without a cap"}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


SCHEMAS: dict[str, Any] = {
    "Account": _object(
        {
            "object": {"const": "account"},
            "user": _object(
                {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "tier_id": {"type": "string"},
                }
            ),
            "balance_usd": _USD,
            "held_usd": _USD,
            "available_usd": _USD,
            "spend": _object(
                {
                    "today_usd": _USD,
                    "this_month_usd": _USD,
                    "day_started_at": {"type": "string", "format": "date-time"},
                    "month_started_at": {"type": "string", "format": "date-time"},
                }
            ),
            "key": _object(
                {
                    "id": {"type": "string"},
                    "prefix": {"type": "string"},
                    "name": {"type": "string"},
                    "rpm": {"type": "integer"},
                    "tpm": {"type": "integer"},
                    "allowed_models": {"type": "array", "items": {"type": "string"}},
                    "spend_cap_usd": _USD_OR_NULL,
                    "spent_usd": _USD,
                    "held_usd": _USD_OR_NULL,
                    "spend_left_usd": _USD_OR_NULL,
                }
            ),
            "team": {
                "oneOf": [
                    {
                        "type": "object",
                        "description": "the user's team; `wallet`: its balance pays",
                        "properties": {
                            "id": {"type": "string"},
                            "name": {"type": "string"},
                            "wallet": {"type": "boolean"},
                            "wallet_balance_usd": _USD,
                            "wallet_available_usd": _USD,
                        },
                        "required": ["id", "name", "wallet"],
                    },
                    {"type": "null"},
                ]
            },
            "budgets": {
                "type": "array",
                "description": "every budget on the key's path (its key, user and team), "
                "its spend cap included, with what its window has left",
                "items": _object(
                    {
                        "id": {"type": "string"},
                        "scope": {"enum": ["key", "user", "team", "end_user"]},
                        "subject": {"type": "string"},
                        "window": {"enum": ["daily", "weekly", "monthly", "lifetime"]},
                        "limit_usd": _USD,
                        "spent_usd": _USD,
                        "held_usd": _USD,
                        "remaining_usd": _USD,
                        "window_started_at": {"type": ["string", "null"]},
                        "resets_at": {"type": ["string", "null"]},
                    }
                ),
            },
        }
    ),
    "AnthropicError": {
        "type": "object",
        "description": "An error on /v1/messages and /v1/messages/count_tokens, and on any "
        "/v1 route asked with `anthropic-version`; the answer also has a `request-id` header.",
        "properties": {
            "type": {"const": "error"},
            "error": {
                "type": "object",
                "properties": _ERROR_FIELDS,
                "required": ["type", "message", "code", "param"],
            },
            "request_id": {"type": "string"},
        },
        "required": ["type", "error", "request_id"],
    },
    "ModelEntry": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "model"},
            "created": {"type": "integer"},
            "owned_by": {"type": "string", "description": "the provider; `gateway` for a preset"},
            "context_window": {"type": "integer"},
            "servable": {"type": "boolean"},
            "unavailable_reason": _UNAVAILABLE,
        },
        "required": ["id", "object", "created", "owned_by"],
    },
    "ModelList": {
        "type": "object",
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/ModelEntry"}},
        },
        "required": ["object", "data"],
    },
    "AnthropicModel": {
        "type": "object",
        "properties": {
            "type": {"const": "model"},
            "id": {"type": "string"},
            "display_name": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "lifecycle": {"enum": ["active", "deprecated"]},
            "deprecated_at": {"type": ["string", "null"], "format": "date-time"},
            "max_input_tokens": {"type": "integer"},
            "max_tokens": {"type": "integer"},
            "servable": {"type": "boolean"},
            "unavailable_reason": _UNAVAILABLE,
        },
        "required": ["type", "id", "display_name", "created_at", "lifecycle"],
    },
    "AnthropicModelList": {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/AnthropicModel"}},
            "has_more": {"const": False},
            "first_id": _NULLABLE_STRING,
            "last_id": _NULLABLE_STRING,
        },
        "required": ["data", "has_more", "first_id", "last_id"],
    },
    "CountTokensRequest": {
        "type": "object",
        "description": "Anthropic's Messages request without max_tokens; `thinking` is ignored.",
        "properties": {
            "model": {"type": "string"},
            "messages": {"type": "array", "minItems": 1},
            "system": {"oneOf": [{"type": "string"}, {"type": "array"}]},
            "tools": {"type": "array"},
            "tool_choice": {"type": "object"},
            "thinking": {"type": "object"},
        },
        "required": ["model", "messages"],
    },
    "TokenCount": {
        "type": "object",
        "description": "The gateway's count with the model's tokenizer, not the provider's.",
        "properties": {"input_tokens": {"type": "integer", "minimum": 0}},
        "required": ["input_tokens"],
    },
}


def _json(schema: str | list[str]) -> dict[str, Any]:
    names = [schema] if isinstance(schema, str) else schema
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in names]
    schema_of = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"content": {"application/json": {"schema": schema_of}}}


def _answer(description: str, schema: str | list[str]) -> dict[str, Any]:
    return {"description": description, "headers": REQUEST_ID_HEADER, **_json(schema)}


_EITHER_ERROR = ["Error", "AnthropicError"]
_ANTHROPIC_VERSION = {
    "name": "anthropic-version",
    "in": "header",
    "required": False,
    "description": "present: the answer is in Anthropic's shape",
    "schema": {"type": "string"},
}
_GATEWAY_KEY: list[dict[str, list[str]]] = [
    {"gatewayKey": []},
    {},
]  # the listings take a key but need none

PATHS: dict[str, Any] = {
    "/v1/account": {
        "get": {
            "operationId": "account",
            "summary": "The calling key's own account: balance, open holds, spend today and "
            "this month (UTC), and the key's limits",
            "security": [{"gatewayKey": []}],
            "responses": {
                "200": _answer("OK", "Account"),
                "401": _answer("invalid_api_key", "Error"),
                "429": _answer("rate_limit_exceeded: the key's requests per minute", "Error"),
                "503": _answer("ledger_unavailable", "Error"),
            },
        }
    },
    "/v1/models": {
        "get": {
            "operationId": "list_models",
            "summary": "The models that can be served now (narrowed by a valid key's allowed "
            "models), then the auto presets",
            "security": _GATEWAY_KEY,
            "parameters": [
                {
                    "name": "all",
                    "in": "query",
                    "required": False,
                    "description": "true: every active model, each saying if it is servable",
                    "schema": {"type": "boolean"},
                },
                _ANTHROPIC_VERSION,
            ],
            "responses": {"200": _answer("OK", ["ModelList", "AnthropicModelList"])},
        }
    },
    "/v1/models/{model_id}": {
        "get": {
            "operationId": "retrieve_model",
            "summary": "One active model or preset (its id may hold '/' and ':')",
            "security": _GATEWAY_KEY,
            "parameters": [
                {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}},
                _ANTHROPIC_VERSION,
            ],
            "responses": {
                "200": _answer("OK", ["ModelEntry", "AnthropicModel"]),
                "404": _answer("model_not_found", _EITHER_ERROR),
            },
        }
    },
    "/v1/messages/count_tokens": {
        "post": {
            "operationId": "count_tokens",
            "summary": "A Messages prompt's input tokens; no hold, no charge",
            "security": [{"gatewayKey": []}],
            "requestBody": {"required": True, **_json("CountTokensRequest")},
            "responses": {
                "200": _answer("OK", "TokenCount"),
                **{
                    status: _answer(description, "AnthropicError")
                    for status, description in [
                        ("400", "invalid_request_error"),
                        ("401", "authentication_error"),
                        ("403", "permission_error: the key may not use the model"),
                        ("404", "not_found_error: unknown or inactive model"),
                        ("413", "request_too_large"),
                        ("429", "rate_limit_error: the key's requests per minute"),
                    ]
                },
            },
        }
    },
}

SECURITY_SCHEMES = {
    "gatewayKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "a gateway API key (`x-api-key` is taken too)",
    }
}
