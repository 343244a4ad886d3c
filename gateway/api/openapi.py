"""GET /admin/openapi.json: the admin API described as OpenAPI 3.1, built from
the app's own routes (so no route goes undocumented) and the request schemas
below; with the /v1 routes whose answers are the gateway's own
(`gateway.api.openapi_v1`, and `gateway.api.openapi_responses` for the
Responses API). Every answer names its request id in `x-request-id`."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config_store.documents import MODES, PROVIDER_KINDS, TOKENIZERS
from gateway.api import openapi_responses, openapi_v1
from gateway.api.admin.changes import admin_services
from gateway.api.endpoint import JSON

_DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"}
_PRICE = {**_DECIMAL, "description": "USD per million tokens, as a decimal string"}
_USD = {"type": "string", "description": "USD as a decimal string, at most 9 decimals"}
_INT = {"type": "integer", "minimum": 0}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_MODEL_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "model_id": {"type": "string"},
    "provider": {"type": "string"},
    "input_price_per_million": _PRICE,
    "output_price_per_million": _PRICE,
    "cached_input_price_per_million": {"oneOf": [_PRICE, {"type": "null"}]},
    "cache_write_price_per_million": {"oneOf": [_PRICE, {"type": "null"}]},
    "context_window_size": {"type": "integer", "minimum": 1},
    "max_output_tokens": _INT,
    "is_active": {"type": "boolean"},
    "created_at": {"type": "string", "format": "date-time"},
    "upstream_model": {"type": "string"},
    "tokenizer": {"enum": list(TOKENIZERS)},
    "note": {"type": "string"},
    "mode": {"enum": list(MODES)},
    "fallbacks": {"type": "array", "items": {"type": "string"}},
    "fallback_priority": _INT,
}
_PROVIDER_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "kind": {"enum": list(PROVIDER_KINDS)},
    "base_url": {"type": "string"},
    "api_key_env": {"type": "string"},
    "base_url_env": {"type": "string"},
    "api_key": {"type": "string", "writeOnly": True, "description": "stored encrypted"},
    "enabled": {"type": "boolean"},
    "display_name": {"type": "string"},
    "rpm": _INT,
    "tpm": _INT,
    "fallback_priority": _INT,
    "connect_timeout": {"type": "number", "minimum": 0},
    "read_timeout": {"type": "number", "minimum": 0},
    "total_timeout": {"type": "number", "minimum": 0},
}
_KEY_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string"},
    "allowed_models": {"type": "array", "items": {"type": "string"}},
    "rpm": _INT,
    "tpm": _INT,
    "spend_cap_usd": {"oneOf": [_USD, {"type": "null"}]},
}
_PRICE_FIELDS = (
    "input_price_per_million",
    "output_price_per_million",
    "cached_input_price_per_million",
    "cache_write_price_per_million",
)

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": _object(
                {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
                ("message", "type", "param", "code"),
            ),
            "request_id": {"type": "string", "description": "as in the x-request-id header"},
        },
        "required": ["error", "request_id"],
    },
    **openapi_v1.SCHEMAS,
    **openapi_responses.SCHEMAS,
    "Model": _object(
        _MODEL_PROPERTIES,
        (
            "model_id",
            "provider",
            "input_price_per_million",
            "output_price_per_million",
            "context_window_size",
            "max_output_tokens",
        ),
    ),
    "ModelPatch": _object(_MODEL_PROPERTIES),
    "Models": _object(
        {"models": {"type": "array", "items": {"$ref": "#/components/schemas/ModelPatch"}}},
        ("models",),
    ),
    "Reorder": _object(
        {
            "models": {"type": "array", "items": {"type": "string"}},
            "providers": {"type": "array", "items": {"type": "string"}},
        }
    ),
    "Price": _object(
        {
            **{name: _PRICE for name in _PRICE_FIELDS},
            "effective_from": {"type": "string", "format": "date-time"},
            "reason": {"type": "string"},
        }
    ),
    "Provider": _object(_PROVIDER_PROPERTIES, ("id", "kind")),
    "ProviderPatch": _object(_PROVIDER_PROPERTIES),
    "ApiKeyValue": _object({"api_key": {"type": "string"}}, ("api_key",)),
    "Tier": _object(
        {"id": {"type": "string"}, "name": {"type": "string"}, "markup_percent": _DECIMAL},
        ("id", "name", "markup_percent"),
    ),
    "TierPatch": _object({"name": {"type": "string"}, "markup_percent": _DECIMAL}),
    "User": _object(
        {"id": {"type": "string"}, "name": {"type": "string"}, "tier_id": {"type": "string"}},
        ("id",),
    ),
    "UserPatch": _object({"name": {"type": "string"}, "tier_id": {"type": "string"}}),
    "Credit": _object(
        {
            "amount_usd": _USD,
            "reason": {"type": "string"},
            "idempotency_key": {"type": "string"},
        },
        ("amount_usd",),
    ),
    "Key": _object(_KEY_PROPERTIES),
    "Team": _object(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "members": {"type": "array", "items": {"type": "string"}},
            "wallet": {"type": "boolean", "description": "the team's balance pays for members"},
        },
        ("id",),
    ),
    "Budget": _object(
        {
            "id": {"type": "string", "description": "default: scope-subject-window"},
            "name": {"type": "string"},
            "scope": {"enum": ["key", "user", "team", "end_user"]},
            "subject": {"type": "string", "description": "a key's id, a user's, a team's"},
            "end_user": {"type": "string", "description": "end_user scope: an id, or *"},
            "window": {"enum": ["daily", "weekly", "monthly", "lifetime"]},
            "limit_usd": _USD,
            "alert_percents": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": 100},
            },
        },
        ("scope", "subject", "window", "limit_usd"),
    ),
    "BalanceAlert": _object(
        {
            "id": {"type": "string"},
            "account": {"type": "string", "description": "a user's id, or team:<id>"},
            "below_usd": _USD,
        },
        ("account", "below_usd"),
    ),
    "RouterConfig": {"type": "object", "description": "any part of GET /admin/router/config"},
    "Profile": {"type": "object", "description": "quality, speed_tier, scores, capabilities"},
    "ChatRequest": {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "config": {
                "type": "object",
                "description": "simulate only: an unsaved router config draft (any part of it)",
            }
        },
    },
}

BODIES: dict[tuple[str, str], str] = {
    ("POST", "/admin/models"): "Model",
    ("PATCH", "/admin/models/{model_id}"): "ModelPatch",
    ("PUT", "/admin/models/{model_id}"): "ModelPatch",
    ("POST", "/admin/models/bulk"): "Models",
    ("POST", "/admin/models/reorder"): "Reorder",
    ("POST", "/admin/models/{model_id}/prices"): "Price",
    ("POST", "/admin/providers"): "Provider",
    ("PATCH", "/admin/providers/{provider_id}"): "ProviderPatch",
    ("PUT", "/admin/providers/{provider_id}"): "ProviderPatch",
    ("PUT", "/admin/providers/{provider_id}/api-key"): "ApiKeyValue",
    ("POST", "/admin/tiers"): "Tier",
    ("PATCH", "/admin/tiers/{tier_id}"): "TierPatch",
    ("PUT", "/admin/tiers/{tier_id}"): "TierPatch",
    ("POST", "/admin/users"): "User",
    ("PATCH", "/admin/users/{user_id}"): "UserPatch",
    ("PUT", "/admin/users/{user_id}"): "UserPatch",
    ("POST", "/admin/users/{user_id}/topup"): "Credit",
    ("POST", "/admin/users/{user_id}/adjust"): "Credit",
    ("POST", "/admin/users/{user_id}/keys"): "Key",
    ("PATCH", "/admin/keys/{key_id}"): "Key",
    ("POST", "/admin/teams"): "Team",
    ("PATCH", "/admin/teams/{team_id}"): "Team",
    ("POST", "/admin/teams/{team_id}/topup"): "Credit",
    ("POST", "/admin/teams/{team_id}/adjust"): "Credit",
    ("POST", "/admin/budgets"): "Budget",
    ("PATCH", "/admin/budgets/{budget_id}"): "Budget",
    ("POST", "/admin/balance-alerts"): "BalanceAlert",
    ("PUT", "/admin/router/config"): "RouterConfig",
    ("PUT", "/admin/router/profiles/{model}"): "Profile",
    ("POST", "/admin/router/simulate"): "ChatRequest",
}
_ERROR = {
    "headers": openapi_v1.REQUEST_ID_HEADER,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def _summary(endpoint: Any) -> str:
    doc = (getattr(endpoint, "__doc__", None) or "").strip()
    name = getattr(endpoint, "__name__", "operation").replace("_", " ")
    return doc.split("\n")[0].rstrip(".") if doc else name


def document(routes: list[Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or not route.path.startswith("/admin/"):
            continue
        path = _PARAM.sub(r"{\1}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operation: dict[str, Any] = {
                "operationId": f"{method.lower()}_{route.name}",
                "summary": _summary(route.endpoint),
                "parameters": [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in _PARAM.findall(route.path)
                ],
                "responses": {
                    "200": {"description": "OK", "headers": openapi_v1.REQUEST_ID_HEADER},
                    "400": {"description": "invalid input; nothing written", **_ERROR},
                    "401": {"description": "no or wrong admin key", **_ERROR},
                    "404": {"description": "not found", **_ERROR},
                },
            }
            schema = BODIES.get((method, path))
            if schema is not None:
                reference = {"$ref": f"#/components/schemas/{schema}"}
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": reference}},
                }
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "LLM gateway admin API", "version": "1"},
        "security": [{"adminKey": []}],
        "paths": {**paths, **openapi_v1.PATHS, **openapi_responses.PATHS},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "adminKey": {"type": "http", "scheme": "bearer"},
                **openapi_v1.SECURITY_SCHEMES,
            },
        },
    }


async def openapi(request: Request) -> Response:
    admin_services(request)
    return JSON(document(list(request.app.routes)))


routes = [Route("/admin/openapi.json", openapi, methods=["GET"])]
