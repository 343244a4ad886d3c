"""The JSON body itself, and the requests whose fields are few: embeddings and
legacy text completions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import bad_request
from gateway.proxy.validation.fields import boolean, integer, invalid, mapping, required_string

# OpenAI's default when a legacy completion request names no max_tokens.
COMPLETION_DEFAULT_MAX_TOKENS = 16


# orjson reads JSON nested up to 1024 levels deep but writes only 254, and the
# gateway writes a body out again (to a provider, or to count its tokens).
MAX_DEPTH = 254


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
    if _too_deep(raw, body):
        raise bad_request(
            f"The JSON body is nested more than {MAX_DEPTH} levels deep.", code="invalid_json"
        )
    return body


def _too_deep(raw: bytes, body: dict[str, Any]) -> bool:
    # Fewer brackets than levels cannot nest that deep; counting them is cheap,
    # so only a body with that many is written out to see.
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:
        return True
    return False


def model_name(body: Mapping[str, Any]) -> str:
    return required_string(body, "model", nonempty=True)


def output_cap(body: Mapping[str, Any], name: str) -> int | None:
    """`max_tokens` or `max_completion_tokens`: a positive integer, if given."""
    return integer(body, name, "", 1)


def stream_flags(body: Mapping[str, Any]) -> bool:
    """`stream` and `stream_options` (which the gateway reads for `include_usage`)."""
    options = mapping(body, "stream_options")
    if options is not None:
        boolean(options, "include_usage", "stream_options")
    return bool(boolean(body, "stream"))


def validate_embedding(body: Mapping[str, Any]) -> tuple[str, list[Any]]:
    model = model_name(body)
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(_is_int(t) for t in raw)):
        inputs: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(_is_text_or_tokens(i) for i in raw):
        inputs = raw
    else:
        raise invalid(
            "input",
            "'input' must be a non-empty string, array of strings, or array of token arrays.",
        )
    return model, inputs


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text_or_tokens(item: Any) -> bool:
    if isinstance(item, str):
        return bool(item)
    return isinstance(item, list) and bool(item) and all(_is_int(t) for t in item)


def validate_completion(body: Mapping[str, Any]) -> tuple[str, list[Any], int]:
    """The legacy /v1/completions request: (model, prompts, max_tokens)."""
    model = model_name(body)
    raw = body.get("prompt")
    if isinstance(raw, str):
        prompts: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(_is_text_or_tokens(i) for i in raw):
        prompts = raw
    elif isinstance(raw, list) and raw and all(_is_int(t) for t in raw):
        prompts = [raw]
    else:
        raise invalid("prompt", "'prompt' must be a string, an array of strings, or token arrays.")
    max_tokens = output_cap(body, "max_tokens")
    stream_flags(body)
    return model, prompts, max_tokens or COMPLETION_DEFAULT_MAX_TOKENS
