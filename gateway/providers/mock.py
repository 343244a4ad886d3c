"""The `mock` provider: local and deterministic, so the quickstart works offline.

It answers in OpenAI's format, streaming too, with a reply derived from the
last user message, cut at `max_tokens`, and reports usage counted with the
model's tokenizer, exactly as a real provider would report it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from billing.pricing import Usage
from billing.tokens import TokenCounter
from gateway.providers.base import ChatCall, ChatResult, ChatStream, Chunk, Listed


def last_user_text(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(
                str(p.get("text", ""))
                for p in content
                if isinstance(p, Mapping) and p.get("type") == "text"
            )
    return ""


def reply_words(call: ChatCall) -> list[str]:
    said = " ".join(last_user_text(call.body.get("messages")).split())
    if len(said) > 200:
        said = said[:200] + "..."
    text = f"Hello from {call.model.model_id}, the gateway's mock model. You said: {said}"
    return text.split(" ")


class MockProvider:
    LISTED = ("mock-1",)

    async def list_models(self, base_url: str, api_key: str, provider: str) -> list[Listed]:
        return [Listed(name, context_window=128_000) for name in self.LISTED]

    def __init__(self, counter: TokenCounter) -> None:
        self._counter = counter

    async def _answer(self, call: ChatCall) -> tuple[list[str], str, Usage]:
        """The words of the reply (cut to max_tokens), the finish reason and the usage."""
        tokenizer = call.model.tokenizer
        words = reply_words(call)
        finish = "stop"
        limit = call.max_tokens
        if limit is not None:
            kept: list[str] = []
            for word in words:
                candidate = " ".join([*kept, word])
                if self._counter.count(candidate, tokenizer) > limit:
                    finish = "length"
                    break
                kept.append(word)
            words = kept
        counted = self._counter.chat_prompt(call.body.get("messages") or [])
        await counted.count_all_if_large()  # a large prompt is counted off the loop
        prompt = counted.tokens(tokenizer)
        completion = self._counter.count(" ".join(words), tokenizer)
        return words, finish, Usage(prompt_tokens=prompt, completion_tokens=completion)

    async def chat(self, call: ChatCall) -> ChatResult:
        words, finish, usage = await self._answer(call)
        body = {
            "id": f"chatcmpl-mock-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model.model_id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(words)},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        }
        return ChatResult(body=body, usage=usage)

    async def chat_stream(self, call: ChatCall) -> ChatStream:
        words, finish, usage = await self._answer(call)
        stream = ChatStream()
        base = {
            "id": f"chatcmpl-mock-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.model.model_id,
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> Chunk:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**base, "choices": [choice]}

        async def chunks() -> AsyncIterator[Chunk]:
            yield chunk({"role": "assistant", "content": ""})
            for index, word in enumerate(words):
                piece = word if index == 0 else f" {word}"
                stream.text.append(piece)
                yield chunk({"content": piece})
            yield chunk({}, finish)
            stream.usage, stream.usage_complete = usage, True

        stream.chunks = chunks()
        return stream
