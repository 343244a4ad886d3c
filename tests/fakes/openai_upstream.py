"""A fake OpenAI upstream: a real local HTTP server speaking the Chat Completions wire format.

It runs its own asyncio event loop in a daemon thread, so sync and async tests can both use it::

    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake-upstream")

Replies are deterministic: content is ``"Echo: " + <last user message text>`` and token counts
are whitespace-separated words (see ``_usage``). Behaviour knobs (``delay``, ``held``,
``fail_next``, ``stream_chunk_delay``, ``omit_usage``, ``close_mid_stream_after``,
``cached_tokens``, ``tool_call``, ``replies``) are plain attributes that may be changed
between requests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer

_ERROR_KINDS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def _error(status: int, message: str, retry_after: str | None = None) -> web.Response:
    etype, code = _ERROR_KINDS.get(status, ("server_error", None))
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return web.json_response(body, status=status, headers=headers)


def _text(content: Any) -> str:
    """Text of a message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return " ".join(str(p.get("text", "")) for p in parts)
    return ""


def _pieces(content: str) -> list[str]:
    """Split into one piece per word (trailing whitespace attached); joining gives ``content``."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", content) if p]


class FakeOpenAI(ThreadedServer):
    name = "fake-openai"

    def __init__(self, api_key: str = "sk-fake-upstream") -> None:
        super().__init__()
        self.api_key = api_key
        self._set_knobs()
        # Recording.
        self._lock = threading.Lock()
        self._calls = 0
        self._requests: list[dict[str, Any]] = []
        self._responses: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def _set_knobs(self) -> None:
        self.delay: float = 0.0
        # While true, chat requests are received (and counted) but not answered:
        # a test opens the gate when the state it needs is reached, not after a time.
        self.held: bool = False
        self.fail_next: list[tuple[int, str]] = []  # or (status, message, Retry-After)
        self.stream_chunk_delay: float = 0.0
        self.omit_usage: bool = False
        self.close_mid_stream_after: int | None = None
        self.cached_tokens: int = 0
        self.tool_call: dict[str, str] | None = None
        # model -> fixed reply content, in place of the echo (e.g. a classifier's JSON).
        self.replies: dict[str, str] = {}
        # GET /v1/models: the ids listed, or an error status for the listing.
        self.listed: list[str] = ["gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06"]
        self.listing_fails: int | None = None

    @property
    def calls(self) -> int:
        with self._lock:
            return self._calls

    @property
    def requests(self) -> list[dict[str, Any]]:
        """``{"json": body, "headers": {lower-cased name: value}}`` per POST received."""
        with self._lock:
            return list(self._requests)

    @property
    def responses(self) -> list[dict[str, Any]]:
        """Successful replies only: content, usage (None when not sent), stream, finish_reason..."""
        with self._lock:
            return list(self._responses)

    def reset(self) -> None:
        """Forget what was recorded and put every knob back to its default."""
        self._set_knobs()
        with self._lock:
            self._calls = 0
            self._requests.clear()
            self._responses.clear()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/v1/models", self._models)

    async def _models(self, request: web.Request) -> web.Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.")
        if self.listing_fails is not None:
            return _error(self.listing_fails, "listing is down")
        ids = list(self.listed)
        data = [
            {"id": i, "object": "model", "created": 1700000000, "owned_by": "fake"} for i in ids
        ]
        return web.json_response({"object": "list", "data": data})

    async def _received(self, request: web.Request) -> dict[str, Any]:
        """Count and record a request; return its JSON body."""
        body: dict[str, Any] = await request.json()
        with self._lock:
            self._calls += 1
            self._requests.append({"json": body, "headers": dict(request.headers)})
        return body

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        """Legacy completions: "Echo: <prompt>" cut to max_tokens words (default 16)."""
        body = await self._received(request)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.")
        words = ("Echo: " + str(body.get("prompt"))).split()
        limit = body.get("max_tokens") or 16
        text = " ".join(words[:limit])
        usage = {
            "prompt_tokens": len(str(body.get("prompt")).split()),
            "completion_tokens": len(text.split()),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        finish = "length" if len(words) > limit else "stop"
        head = {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": 1,
            "model": body["model"],
        }
        self._record({"usage": usage, "stream": bool(body.get("stream")), "content": text})
        if not body.get("stream"):
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
            return web.json_response({**head, "choices": [choice], "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        pieces = _pieces(text)
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            choice = {
                "index": 0,
                "text": piece,
                "logprobs": None,
                "finish_reason": finish if last else None,
            }
            await resp.write(
                b"data: " + json.dumps({**head, "choices": [choice]}).encode() + b"\n\n"
            )
        if (body.get("stream_options") or {}).get("include_usage"):
            final = {**head, "choices": [], "usage": usage}
            await resp.write(b"data: " + json.dumps(final).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        """One 3-number vector per input; usage: one token per word (or per token id)."""
        body = await self._received(request)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.")
        raw = body.get("input")
        items = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else raw
        tokens = sum(len(i) if isinstance(i, list) else len(i.split()) for i in items)
        data = [
            {"object": "embedding", "index": n, "embedding": [0.5, -0.25, float(n)]}
            for n in range(len(items))
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        self._record({"usage": usage, "stream": False, "content": ""})
        return web.json_response(
            {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self._calls += 1
            self._requests.append({"json": body, "headers": headers})
            failure = self.fail_next.pop(0) if self.fail_next else None
        if self.delay:
            await asyncio.sleep(self.delay)
        while self.held:
            await asyncio.sleep(0.005)
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.")
        if failure is not None:
            return _error(*failure)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "Invalid request: 'messages' is required.")
        return await self._reply(request, body)

    def _completion(self, body: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str]:
        """(content, tool_call or None, finish_reason) for a request."""
        if body.get("tools") and self.tool_call is not None:
            return "", self.tool_call, "tool_calls"
        users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        content = "Echo: " + (_text(users[-1].get("content")) if users else "")
        content = self.replies.get(str(body.get("model")), content)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        words = content.split()
        if isinstance(limit, int) and len(words) > limit:
            return " ".join(words[:limit]), None, "length"
        return content, None, "stop"

    def _usage(self, body: dict[str, Any], content: str, tool: Any) -> dict[str, Any]:
        messages = [m for m in body["messages"] if isinstance(m, dict)]
        prompt = sum(len(_text(m.get("content")).split()) + 3 for m in messages)
        out = content if tool is None else f"{tool['name']} {tool['arguments']}"
        completion = len(out.split())
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if self.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return usage

    async def _reply(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        n = next(self._ids)
        content, tool, finish = self._completion(body)
        usage = self._usage(body, content, tool)
        stream = bool(body.get("stream"))
        model = body.get("model", "")
        head = {"id": f"chatcmpl-fake-{n}", "created": int(time.time()), "model": model}
        tool_calls = None
        if tool is not None:
            function = {"name": tool["name"], "arguments": tool["arguments"]}
            tool_calls = [{"id": f"call_fake_{n}", "type": "function", "function": function}]
        record: dict[str, Any] = {
            "id": head["id"], "model": model, "content": content, "tool_calls": tool_calls,
            "finish_reason": finish, "stream": stream, "usage": None,
            "computed_usage": usage, "completed": True,
        }  # fmt: skip
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": None if tool else content}
            if tool_calls:
                message["tool_calls"] = tool_calls
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            out = {**head, "object": "chat.completion", "choices": [choice]}
            if not self.omit_usage:
                out["usage"] = record["usage"] = usage
            self._record(record)
            return web.json_response(out)
        return await self._stream(request, body, head, record, tool_calls)

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        head: dict[str, Any],
        record: dict[str, Any],
        tool_calls: list[dict[str, Any]] | None,
    ) -> web.StreamResponse:
        options = body.get("stream_options") or {}
        with_usage = bool(options.get("include_usage")) and not self.omit_usage
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {**head, "object": "chat.completion.chunk", "choices": choices, **extra}
            if with_usage and "usage" not in extra:
                chunk["usage"] = None
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        await send(choice({"role": "assistant", "content": ""}))
        pieces: list[dict[str, Any]] = [{"content": p} for p in _pieces(record["content"])]
        if tool_calls:
            pieces = [{"tool_calls": [{"index": 0, **tc} for tc in tool_calls]}]
        for sent, delta in enumerate(pieces):
            if self.close_mid_stream_after is not None and sent >= self.close_mid_stream_after:
                record["completed"] = False
                self._record(record)
                assert request.transport is not None
                request.transport.close()  # flushes what was written, then drops the socket
                return resp
            if self.stream_chunk_delay:
                await asyncio.sleep(self.stream_chunk_delay)
            await send(choice(delta))
        await send(choice({}, record["finish_reason"]))
        if with_usage:
            record["usage"] = record["computed_usage"]
            await send([], usage=record["usage"])
        self._record(record)  # before the last bytes, so a client that is done sees it
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def _record(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._responses.append(record)
