"""The SSE decoder, fed recorded streams however the bytes arrive, and the
framing the gateway writes."""

from __future__ import annotations

import json

import pytest

from gateway.dialects.openai import DONE
from gateway.dialects.sse import data_event
from gateway.providers.sse import SSEDecoder
from tests.unit.recorded import CHUNK_SIZES, PAYLOADS, events_of, lines_of, payload

PROVIDERS = ("openai", "anthropic", "gemini")  # dialects/ holds the gateway's own output
STREAMS = sorted(
    str(path.relative_to(PAYLOADS))
    for name in PROVIDERS
    for path in (PAYLOADS / name).glob("*.sse")
)


def decoded(*lines: bytes) -> list[str]:
    decoder = SSEDecoder()
    return [data for line in lines for data in decoder.feed(line)] + list(decoder.flush())


def test_every_recorded_stream_is_read_here():
    assert len(STREAMS) == 29


@pytest.mark.parametrize("name", STREAMS)
def test_the_events_do_not_depend_on_how_the_bytes_were_cut(name: str):
    data = payload(name)
    whole = events_of(data, len(data))
    assert whole
    for size in CHUNK_SIZES:
        assert events_of(data, size) == whole, size


def test_openai_events_are_the_data_lines_in_order():
    events = events_of(payload("openai/chat_stream.sse"), 1)
    assert len(events) == 7
    assert events[-1] == "[DONE]"
    assert [json.loads(e)["choices"][0]["delta"].get("content") for e in events[:5]] == [
        "",
        "Two",
        " plus two",
        " is four.",
        None,
    ]
    assert json.loads(events[5])["usage"]["prompt_tokens"] == 2006


def test_anthropic_event_lines_are_skipped_and_multibyte_text_survives_one_byte_reads():
    events = events_of(payload("anthropic/messages_stream.sse"), 1)
    types = [json.loads(e)["type"] for e in events]
    assert types == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert json.loads(events[5])["delta"]["text"] == " of France (Île-de-France)."


def test_gemini_crlf_framing_is_read_like_lf():
    data = payload("gemini/stream.sse")
    assert b"\r\n\r\n" in data
    events = events_of(data, 3)
    assert [json.loads(e)["candidates"][0]["content"]["parts"][0]["text"] for e in events] == [
        "The sky",
        " looks blue because air",
        " scatters short waves.\n",
    ]
    assert events == events_of(data.replace(b"\r\n", b"\n"), 3)


def test_a_stream_cut_mid_event_hands_over_the_partial_data():
    # What is pending at the end is flushed as it stands; the stream decoders then
    # refuse it as invalid JSON (see the providers' tests).
    events = events_of(payload("openai/chat_stream_cut_mid_event.sse"), 1)
    assert len(events) == 4
    assert events[-1] == '{"id":"chatcmpl-9uT1","object":"chat.com'


def test_the_line_splitter_keeps_line_ends_and_the_last_line_without_one():
    assert list(lines_of(b"data: a\n\ndata: b", 2)) == [b"data: a\n", b"\n", b"data: b"]


def test_comments_and_other_fields_are_ignored():
    assert decoded(b": keep-alive\n", b"\n", b"event: x\n", b"id: 7\n", b"retry: 10\n", b"\n") == []
    assert decoded(b": ping\n", b"data: a\n", b": ping\n", b"\n") == ["a"]


def test_data_lines_of_one_event_are_joined_with_newlines():
    assert decoded(b"data: one\n", b"data: two\n", b"\n") == ["one\ntwo"]


def test_one_leading_space_is_dropped_and_no_more():
    assert decoded(b"data:x\n", b"\n", b"data:  y\n", b"\n", b"data\n", b"\n") == ["x", " y", ""]


def test_line_endings_are_optional_and_crlf_is_stripped():
    assert decoded(b"data: a", b"", b"data: b\r\n", b"\r\n") == ["a", "b"]


def test_blank_lines_without_data_dispatch_nothing():
    assert decoded(b"\n", b"\n", b"data: a\n", b"\n", b"\n") == ["a"]


def test_flush_hands_over_an_event_left_without_its_blank_line_once():
    decoder = SSEDecoder()
    assert list(decoder.feed(b"data: tail\n")) == []
    assert list(decoder.flush()) == ["tail"]
    assert list(decoder.flush()) == []


def test_bytes_that_are_not_utf8_raise():
    with pytest.raises(UnicodeDecodeError):
        list(SSEDecoder().feed(b"data: \xff\n"))


def test_the_gateway_frames_events_as_single_data_lines():
    framed = data_event({"a": "line\nbreak", "n": 1})
    assert framed == b'data: {"a":"line\\nbreak","n":1}\n\n'
    assert decoded(*lines_of(framed + DONE, 1)) == ['{"a":"line\\nbreak","n":1}', "[DONE]"]
