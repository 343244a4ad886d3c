"""Parsing and checking the fields of a request body that the gateway itself reads.

Every other field passes through to the provider untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import bad_request


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request(
            "We could not parse the JSON body of your request. Send valid JSON.",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    return body


def _positive_int(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"'{name}' must be an integer.", param=name, code="invalid_type")
    if value < 1:
        raise bad_request(f"'{name}' must be at least 1.", param=name, code="invalid_value")
    return value


def validate_chat(body: Mapping[str, Any]) -> tuple[str, list[Any], int | None, bool]:
    """The fields the gateway itself reads; all others pass through to the provider."""
    model = body.get("model")
    if model is None:
        raise bad_request("Missing required parameter: 'model'.", param="model", code="missing")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must be a non-empty string.", param="model", code="invalid_type")
    messages = body.get("messages")
    if messages is None:
        raise bad_request(
            "Missing required parameter: 'messages'.", param="messages", code="missing"
        )
    if not isinstance(messages, list) or not messages:
        raise bad_request(
            "'messages' must be a non-empty array.", param="messages", code="invalid_type"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise bad_request(
                f"'messages[{index}]' must be an object with a string 'role'.",
                param=f"messages[{index}]",
                code="invalid_type",
            )
    max_tokens = _positive_int(body, "max_completion_tokens")
    legacy = _positive_int(body, "max_tokens")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean.", param="stream", code="invalid_type")
    return model, messages, max_tokens if max_tokens is not None else legacy, bool(stream)


def validate_embedding(body: Mapping[str, Any]) -> tuple[str, list[Any]]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must be a non-empty string.", param="model", code="invalid_type")
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(_is_int(t) for t in raw)):
        inputs: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(_is_text_or_tokens(i) for i in raw):
        inputs = raw
    else:
        raise bad_request(
            "'input' must be a non-empty string, array of strings, or array of token arrays.",
            param="input",
            code="invalid_type",
        )
    return model, inputs


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text_or_tokens(item: Any) -> bool:
    if isinstance(item, str):
        return bool(item)
    return isinstance(item, list) and bool(item) and all(_is_int(t) for t in item)


# OpenAI's default when a legacy completion request names no max_tokens.
COMPLETION_DEFAULT_MAX_TOKENS = 16


def validate_completion(body: Mapping[str, Any]) -> tuple[str, list[Any], int]:
    """The legacy /v1/completions request: (model, prompts, max_tokens)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must be a non-empty string.", param="model", code="invalid_type")
    raw = body.get("prompt")
    if isinstance(raw, str):
        prompts: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(_is_text_or_tokens(i) for i in raw):
        prompts = raw
    elif isinstance(raw, list) and raw and all(_is_int(t) for t in raw):
        prompts = [raw]
    else:
        raise bad_request(
            "'prompt' must be a string, an array of strings, or token arrays.",
            param="prompt",
            code="invalid_type",
        )
    max_tokens = _positive_int(body, "max_tokens")
    if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
        raise bad_request("'stream' must be a boolean.", param="stream", code="invalid_type")
    return model, prompts, max_tokens or COMPLETION_DEFAULT_MAX_TOKENS
