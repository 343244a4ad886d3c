"""The OpenAI framing of a stream, fed recorded chunks: relayed as they are,
usage only when asked for, the final usage chunk with the cost, `[DONE]` only
after a stream that ended well."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.dialects.openai import DONE, OpenAIFraming
from gateway.dialects.sse import data_event, typed_event
from tests.unit.dialect_payloads import MODEL, REQUEST_ID, events, expected, play
from tests.unit.test_dialect_anthropic import DETAILS

DIALECTS = Path(__file__).parents[2] / "gateway" / "dialects"


def framing(
    *, include_usage: bool = True, chunk_object: str = "chat.completion.chunk"
) -> OpenAIFraming:
    return OpenAIFraming(
        request_id=REQUEST_ID, model=MODEL, include_usage=include_usage, chunk_object=chunk_object
    )


@pytest.mark.parametrize(
    "stream", ["stream_text", "stream_tools", "stream_length", "stream_cut", "stream_empty"]
)
def test_a_stream_with_usage_asked_for_is_framed_to_the_exact_bytes(stream: str):
    assert b"".join(play(framing(), stream)) == expected(f"{stream}.openai.sse")


def test_a_stream_without_usage_asked_for_drops_the_usage_and_sends_no_final_chunk():
    sent = b"".join(play(framing(include_usage=False), "stream_text"))
    assert sent == expected("stream_text.openai-without-usage.sse")
    assert all("usage" not in data for _, data in events(sent)[:-1])
    assert sent.endswith(b"}\n\n" + DONE)


def test_a_legacy_completion_stream_ends_with_a_text_completion_usage_chunk():
    sent = b"".join(play(framing(chunk_object="text_completion"), "stream_text_completion"))
    assert sent == expected("stream_text_completion.openai.sse")


def test_the_final_usage_chunk_carries_the_cost_and_the_served_model():
    *_, (_, final), (_, done) = events(b"".join(play(framing(), "stream_tools")))
    assert final == {
        "id": "chatcmpl-7",  # the upstream's, as its chunks had
        "object": "chat.completion.chunk",
        "created": 1700000002,
        "model": MODEL,
        "choices": [],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 25,
            "total_tokens": 55,
            "cost": 0.000001234,
            "cost_details": DETAILS,
            "prompt_tokens_details": {"cached_tokens": 16},
        },
    }
    assert done == "[DONE]"


def test_a_cut_stream_ends_with_the_error_and_no_done():
    steps = play(framing(), "stream_cut")
    assert events(steps[-1]) == [
        (
            "message",
            {
                "error": {
                    "message": "The provider's stream ended before it was complete.",
                    "type": "upstream_error",
                    "param": None,
                    "code": "upstream_error",
                },
                "request_id": REQUEST_ID,
            },
        )
    ]
    assert DONE not in b"".join(steps)


def test_the_event_encoders():
    assert data_event({"a": 1, "b": "é"}) == b'data: {"a":1,"b":"\xc3\xa9"}\n\n'
    assert typed_event("ping", {}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert typed_event("x", {"n": [1]}) == b'event: x\ndata: {"type":"x","n":[1]}\n\n'
    assert DONE == b"data: [DONE]\n\n"
