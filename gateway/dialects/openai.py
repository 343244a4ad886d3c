"""OpenAI's framing of a streamed answer: chunk objects as they come, the final
usage chunk (with the cost) when the client asked for usage, then `data: [DONE]`."""

from __future__ import annotations

from typing import Any

from billing.pricing import Prices
from billing.settlement import Charge
from gateway.dialects.cost import cost_fields
from gateway.dialects.sse import data_event
from gateway.errors import GatewayError

DONE = b"data: [DONE]\n\n"


class OpenAIFraming:
    """Chunks relayed as they are; `usage` is only sent when the client asked."""

    def __init__(
        self,
        *,
        request_id: str,
        model: str,
        include_usage: bool,
        chunk_object: str = "chat.completion.chunk",
    ) -> None:
        self._request_id = request_id
        self._model = model
        self._include_usage = include_usage
        self._object = chunk_object  # "text_completion" for the legacy /v1/completions
        # Of the last chunk relayed, only what the final usage chunk repeats: a
        # stream holds no whole chunk while it waits for the next.
        self._id = request_id
        self._created: Any = 0

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        if not self._include_usage:
            chunk.pop("usage", None)
        self._id = chunk.get("id", self._request_id)
        self._created = chunk.get("created", 0)
        return data_event(chunk)

    def end(self, charge: Charge, prices: Prices) -> bytes:
        if not self._include_usage:
            return DONE
        final = {
            "id": self._id,
            "object": self._object,
            "created": self._created,
            "model": self._model,
            "choices": [],
            "usage": usage_body(charge, prices),
        }
        return data_event(final) + DONE

    def failed(self, error: GatewayError) -> bytes:
        return data_event(error.body(self._request_id))


def usage_body(charge: Charge, prices: Prices) -> dict[str, Any]:
    """The `usage` object of an OpenAI answer: the charged tokens and the cost."""
    usage = charge.usage
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        **cost_fields(charge, prices),
    }
    if usage.cache_read_tokens:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    return body
