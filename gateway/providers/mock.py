"""The `mock` provider: local and deterministic, so the quickstart works offline.

It answers in OpenAI's formats, streamed too: chat (`mock-1`; see
`mock_answers` for what it answers: text, JSON, tool calls, `n` and `stop`),
legacy text completions (`mock-instruct-1`) and embeddings (`mock-embed-1`).
Usage is counted with the model's tokenizer, exactly as a real provider would
report it: the prompt as the gateway counts it, and the output as the tokens of
each text it outputs (contents, tool-call names and arguments), summed over
the choices.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from billing.pricing import Usage
from billing.tokens import TokenCounter
from gateway.errors import bad_request
from gateway.providers.base import ChatCall, ChatResult, ChatStream, Chunk, Listed
from gateway.providers.mock_answers import (
    Answer,
    Count,
    chat_answers,
    choices_asked,
    cut_at_stop,
    cut_words,
    pieces,
    said,
    stops_asked,
)

# Fields whose tokens count towards the prompt besides the messages, as the
# gateway counts them when it holds.
PROMPT_EXTRAS = ("tools", "functions", "response_format", "tool_choice")
EMBEDDING_DIMENSIONS = 256


class MockProvider:
    LISTED = (
        Listed("mock-1", context_window=128_000),
        Listed("mock-instruct-1", context_window=4_096, mode="completion"),
        Listed("mock-embed-1", context_window=8_191, mode="embedding"),
    )

    def __init__(self, counter: TokenCounter) -> None:
        self._counter = counter

    async def list_models(self, base_url: str, api_key: str, provider: str) -> list[Listed]:
        return list(self.LISTED)

    def _count(self, call: ChatCall) -> Count:
        tokenizer = call.model.tokenizer
        return lambda text: self._counter.count(text, tokenizer)

    async def _chat_answers(self, call: ChatCall) -> tuple[list[Answer], Usage]:
        count = self._count(call)
        answers = chat_answers(call.body, call.model.model_id, call.max_tokens, count)
        messages = call.body.get("messages") or []
        counted = self._counter.chat_prompt(messages, [call.body.get(k) for k in PROMPT_EXTRAS])
        await counted.count_all_if_large()  # a large prompt is counted off the loop
        prompt = counted.tokens(call.model.tokenizer)
        completion = sum(count(text) for answer in answers for text in answer.texts())
        return answers, Usage(prompt_tokens=prompt, completion_tokens=completion)

    async def chat(self, call: ChatCall) -> ChatResult:
        answers, usage = await self._chat_answers(call)
        choices = []
        for index, answer in enumerate(answers):
            message: dict[str, Any] = {"role": "assistant", "content": answer.content}
            if answer.tool_calls:
                message["tool_calls"] = [c.as_message() for c in answer.tool_calls]
            finish = answer.finish
            choices.append(
                {"index": index, "message": message, "logprobs": None, "finish_reason": finish}
            )
        body = {
            "id": f"chatcmpl-mock-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model.model_id,
            "choices": choices,
            "usage": _usage_body(usage),
        }
        return ChatResult(body=body, usage=usage)

    async def chat_stream(self, call: ChatCall) -> ChatStream:
        answers, usage = await self._chat_answers(call)
        stream = ChatStream()
        base = _chunk_base(call, "chatcmpl", "chat.completion.chunk")

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> Chunk:
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice]}

        async def chunks() -> AsyncIterator[Chunk]:
            for index, answer in enumerate(answers):
                if not answer.tool_calls:
                    yield chunk(index, {"role": "assistant", "content": ""})
                for piece in pieces(answer.content or ""):
                    stream.text.append(piece)
                    yield chunk(index, {"content": piece})
                for n, call in enumerate(answer.tool_calls):
                    stream.text.append(call.name)
                    function = {"name": call.name, "arguments": ""}
                    head = {"index": n, "id": call.id, "type": "function", "function": function}
                    delta: dict[str, Any] = {"tool_calls": [head]}
                    if n == 0:
                        delta = {"role": "assistant", "content": None, **delta}
                    yield chunk(index, delta)
                    for piece in pieces(call.arguments):
                        stream.text.append(piece)
                        part = {"index": n, "function": {"arguments": piece}}
                        yield chunk(index, {"tool_calls": [part]})
                yield chunk(index, {}, answer.finish)
            stream.usage, stream.usage_complete = usage, True

        stream.chunks = chunks()
        return stream

    async def text_completion(self, call: ChatCall) -> ChatResult:
        """A legacy completion: for each prompt, `n` texts continuing it."""
        texts, finishes, usage = await self._completions(call)
        choices = [
            {"text": text, "index": i, "logprobs": None, "finish_reason": finish}
            for i, (text, finish) in enumerate(zip(texts, finishes, strict=True))
        ]
        body = {
            "id": f"cmpl-mock-{uuid.uuid4().hex[:24]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": call.model.model_id,
            "choices": choices,
            "usage": _usage_body(usage),
        }
        return ChatResult(body=body, usage=usage)

    async def text_completion_stream(self, call: ChatCall) -> ChatStream:
        texts, finishes, usage = await self._completions(call)
        stream = ChatStream()
        base = _chunk_base(call, "cmpl", "text_completion")

        def chunk(index: int, text: str, finish: str | None = None) -> Chunk:
            choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice]}

        async def chunks() -> AsyncIterator[Chunk]:
            for index, (text, finish) in enumerate(zip(texts, finishes, strict=True)):
                for piece in pieces(text):
                    stream.text.append(piece)
                    yield chunk(index, piece)
                yield chunk(index, "", finish)
            stream.usage, stream.usage_complete = usage, True

        stream.chunks = chunks()
        return stream

    async def _completions(self, call: ChatCall) -> tuple[list[str], list[str], Usage]:
        """The texts of a legacy completion (prompt by prompt, `n` each, as
        OpenAI orders its choices), their finish reasons, and the usage.
        `best_of`, `echo`, `suffix` and `logprobs` are not read."""
        body, count = call.body, self._count(call)
        n, stops = choices_asked(body), stops_asked(body)
        prompts = _prompts(body.get("prompt"))
        texts: list[str] = []
        finishes: list[str] = []
        for prompt in prompts:
            heard = said(prompt) if isinstance(prompt, str) else f"{len(prompt)} tokens"
            text = cut_at_stop(f" and so {call.model.model_id} carries on from: {heard}", stops)
            text, cut = cut_words(text, call.max_tokens, count)
            texts += [text] * n
            finishes += ["length" if cut else "stop"] * n
        prompt_tokens = await self._texts_tokens(call, prompts)
        completion = sum(count(text) for text in texts)
        return texts, finishes, Usage(prompt_tokens=prompt_tokens, completion_tokens=completion)

    async def embed(self, call: ChatCall) -> ChatResult:
        """Unit vectors derived from a hash of each input: equal inputs, equal
        vectors. `dimensions` shortens them (then scaled back to unit length,
        as OpenAI does); `encoding_format` "base64" packs them as float32."""
        inputs = _prompts(call.body.get("input"))
        size = _dimensions(call.body.get("dimensions"))
        packed = call.body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(inputs):
            vector = unit_vector(item if isinstance(item, str) else repr(item), size)
            embedding: Any = _base64(vector) if packed else vector
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        prompt = await self._texts_tokens(call, inputs)
        body = {
            "object": "list",
            "data": data,
            "model": call.model.model_id,
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        }
        return ChatResult(body=body, usage=Usage(prompt_tokens=prompt, completion_tokens=0))

    async def _texts_tokens(self, call: ChatCall, items: list[str | list[int]]) -> int:
        """Texts and token arrays, counted as the gateway counts them."""
        ids = sum(len(item) for item in items if isinstance(item, list))
        counted = self._counter.texts([i for i in items if isinstance(i, str)], fixed=ids)
        await counted.count_all_if_large()
        return counted.tokens(call.model.tokenizer)


def unit_vector(text: str, size: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """`size` numbers from a hash of `text` (the first `size` of the same
    EMBEDDING_DIMENSIONS-long sequence, whatever `size`), scaled to length 1."""
    raw = b"".join(
        hashlib.sha256(f"{block}:{text}".encode()).digest()
        for block in range(math.ceil(EMBEDDING_DIMENSIONS * 2 / 32))
    )
    numbers = [
        (int.from_bytes(raw[2 * i : 2 * i + 2], "big") - 32767.5) / 32767.5
        for i in range(EMBEDDING_DIMENSIONS)
    ][:size]
    length = math.sqrt(sum(x * x for x in numbers))
    return [x / length for x in numbers]


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _dimensions(raw: Any) -> int:
    if raw is None:
        return EMBEDDING_DIMENSIONS
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= EMBEDDING_DIMENSIONS:
        raise bad_request(
            f"'dimensions' must be an integer from 1 to {EMBEDDING_DIMENSIONS} for this model.",
            param="dimensions",
        )
    return raw


def _prompts(raw: Any) -> list[str | list[int]]:
    """A prompt or input field (already checked by the gateway): its texts and
    token arrays, one item each."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw):
        return [raw]
    if isinstance(raw, list):
        return [item for item in raw if isinstance(item, str | list)]
    return []


def _chunk_base(call: ChatCall, prefix: str, kind: str) -> dict[str, Any]:
    return {
        "id": f"{prefix}-mock-{uuid.uuid4().hex[:24]}",
        "object": kind,
        "created": int(time.time()),
        "model": call.model.model_id,
    }


def _usage_body(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
