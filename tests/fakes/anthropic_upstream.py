"""A fake Anthropic Messages API: a real local HTTP server speaking its wire format,
streaming included. Replies "Echo: <last user text>"; usage counts words (input: all
system and message text + 3 per message; output: the reply's words)."""

from __future__ import annotations

import json
import threading
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    kinds = {"text": "text", "tool_result": "content"}  # which field holds a block's text
    return " ".join(str(b.get(kinds[b["type"]], "")) for b in content or () if b["type"] in kinds)


class FakeAnthropic(ThreadedServer):
    name = "fake-anthropic"

    def __init__(self, api_key: str = "sk-ant-fake") -> None:
        super().__init__()
        self.api_key = api_key
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.cache_read = 0
        self.cache_write = 0
        self.tool_use: dict[str, Any] | None = None
        self.fail_next: list[tuple[int, str]] = []
        self.listed: list[str] = ["claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022"]
        self.page_size = 2  # GET /v1/models answers in pages of this many
        with self._lock:
            self.requests: list[dict[str, Any]] = []
            self.responses: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_get("/v1/models", self._models)

    async def _models(self, request: web.Request) -> web.Response:
        if request.headers.get("x-api-key") != self.api_key:
            return _error(401, "authentication_error", "invalid x-api-key")
        after = request.query.get("after_id")
        start = self.listed.index(after) + 1 if after in self.listed else 0
        page = self.listed[start : start + self.page_size]
        data = [{"type": "model", "id": i, "display_name": i.upper()} for i in page]
        more = start + self.page_size < len(self.listed)
        return web.json_response(
            {"data": data, "has_more": more, "first_id": page[0] if page else None,
             "last_id": page[-1] if page else None}
        )  # fmt: skip

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        with self._lock:
            self.requests.append({"json": body, "headers": dict(request.headers)})
            failure = self.fail_next.pop(0) if self.fail_next else None
        if request.headers.get("x-api-key") != self.api_key:
            return _error(401, "authentication_error", "invalid x-api-key")
        if request.headers.get("anthropic-version") != "2023-06-01":
            return _error(400, "invalid_request_error", "anthropic-version missing")
        if failure is not None:
            return _error(failure[0], "api_error", failure[1])
        users = [m for m in body["messages"] if m["role"] == "user"]
        reply = "Echo: " + (_text(users[-1]["content"]) if users else "")
        words = len(_text(body.get("system", "")).split()) + sum(
            len(_text(m["content"]).split()) + 3 for m in body["messages"]
        )
        usage = {
            "input_tokens": words,
            "output_tokens": len(reply.split()),
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_write,
        }
        tool = self.tool_use if body.get("tools") else None
        if tool is not None:
            usage["output_tokens"] = 7
        record = {"reply": reply, "usage": usage, "tool": tool}
        with self._lock:
            self.responses.append(record)
        content: list[dict[str, Any]] = [{"type": "text", "text": reply}]
        if tool is not None:
            content = [{"type": "tool_use", "id": "toolu_1", **tool}]
        stop = "tool_use" if tool is not None else "end_turn"
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "content": content,
                    "model": body["model"],
                    "stop_reason": stop,
                    "usage": usage,
                }
            )
        return await self._stream(request, body, content, stop, usage)

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        content: list[dict[str, Any]],
        stop: str,
        usage: dict[str, Any],
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def send(kind: str, data: dict[str, Any]) -> None:
            payload = json.dumps({"type": kind, **data})
            await resp.write(f"event: {kind}\ndata: {payload}\n\n".encode())

        start_usage = {**usage, "output_tokens": 1}
        await send(
            "message_start",
            {
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": body["model"],
                    "usage": start_usage,
                }
            },
        )
        await send("ping", {})
        block = content[0]
        if block["type"] == "text":
            await send(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
            for n, word in enumerate(block["text"].split(" ")):
                piece = word if n == 0 else " " + word
                await send(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "text_delta", "text": piece}},
                )
        else:
            await send(
                "content_block_start",
                {
                    "index": 0,
                    "content_block": {
                        "type": "tool_use",
                        "id": block["id"],
                        "name": block["name"],
                        "input": {},
                    },
                },
            )
            arguments = json.dumps(block["input"])
            for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                await send(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}},
                )
        await send("content_block_stop", {"index": 0})
        await send(
            "message_delta",
            {"delta": {"stop_reason": stop}, "usage": {"output_tokens": usage["output_tokens"]}},
        )
        await send("message_stop", {})
        await resp.write_eof()
        return resp


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response(
        {"type": "error", "error": {"type": kind, "message": message}}, status=status
    )
