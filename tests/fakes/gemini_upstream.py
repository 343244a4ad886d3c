"""A fake Gemini API (`generateContent`, `streamGenerateContent?alt=sse`): a real local
HTTP server. Replies "Echo: <last user text>"; usage counts words (prompt: all text +
3 per content; candidates: the reply's words)."""

from __future__ import annotations

import json
import threading
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer


def _text(parts: Any) -> str:
    words = []
    for part in parts or ():
        if "text" in part:
            words.append(part["text"])
        elif "functionResponse" in part:
            words.append(str(part["functionResponse"]["response"].get("content", "")))
    return " ".join(words)


class FakeGemini(ThreadedServer):
    name = "fake-gemini"

    def __init__(self, api_key: str = "fake-gemini-key") -> None:
        super().__init__()
        self.api_key = api_key
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.thoughts = 0
        self.cached = 0
        self.function_call: dict[str, Any] | None = None
        self.block_prompt = False
        self.fail_next: list[tuple[int, str]] = []
        self.listed: list[str] = ["gemini-2.5-pro", "gemini-2.5-flash", "text-embedding-004"]
        self.page_size = 2
        with self._lock:
            self.requests: list[dict[str, Any]] = []
            self.responses: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{call}", self._generate)
        app.router.add_get("/v1beta/models", self._models)

    async def _models(self, request: web.Request) -> web.Response:
        if request.headers.get("x-goog-api-key") != self.api_key:
            return web.json_response({"error": {"code": 401, "message": "bad key"}}, status=401)
        start = int(request.query.get("pageToken") or 0)
        page = self.listed[start : start + self.page_size]
        models = [
            {
                "name": f"models/{name}",
                "displayName": name.title(),
                "inputTokenLimit": 1_048_576,
                "outputTokenLimit": 65_536,
                "supportedGenerationMethods": (
                    ["embedContent"] if "embedding" in name else ["generateContent"]
                ),
            }
            for name in page
        ]
        body: dict[str, Any] = {"models": models}
        if start + self.page_size < len(self.listed):
            body["nextPageToken"] = str(start + self.page_size)
        return web.json_response(body)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model, _, verb = request.match_info["call"].partition(":")
        with self._lock:
            self.requests.append(
                {
                    "json": body,
                    "headers": dict(request.headers),
                    "url": str(request.url),
                    "model": model,
                    "verb": verb,
                }
            )
            failure = self.fail_next.pop(0) if self.fail_next else None
        if request.headers.get("x-goog-api-key") != self.api_key:
            return _error(403, "PERMISSION_DENIED", "API key not valid.")
        if failure is not None:
            return _error(failure[0], "INTERNAL", failure[1])
        users = [c for c in body["contents"] if c["role"] == "user"]
        reply = "Echo: " + (_text(users[-1]["parts"]) if users else "")
        texts = [_text(c["parts"]) for c in body["contents"]]
        texts.append(_text((body.get("systemInstruction") or {}).get("parts")))
        usage = {
            "promptTokenCount": sum(len(t.split()) for t in texts) + 3 * len(body["contents"]),
            "candidatesTokenCount": len(reply.split()),
            "thoughtsTokenCount": self.thoughts,
            "cachedContentTokenCount": self.cached,
        }
        parts: list[dict[str, Any]] = [{"text": reply}]
        if self.function_call is not None and body.get("tools"):
            parts = [{"functionCall": self.function_call}]
            usage["candidatesTokenCount"] = 6
        with self._lock:
            self.responses.append({"reply": reply, "usage": usage})
        if self.block_prompt:
            answer: dict[str, Any] = {
                "promptFeedback": {"blockReason": "SAFETY"},
                "usageMetadata": usage,
            }
        else:
            answer = {
                "candidates": [
                    {"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}
                ],
                "usageMetadata": usage,
                "responseId": "resp-1",
            }
        if verb != "streamGenerateContent":
            return web.json_response(answer)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if "candidates" in answer and "text" in parts[0]:
            words = parts[0]["text"].split(" ")
            head, tail = " ".join(words[:1]), " " + " ".join(words[1:])
            first = {"candidates": [{"content": {"role": "model", "parts": [{"text": head}]}}]}
            await resp.write(f"data: {json.dumps(first)}\n\n".encode())
            answer["candidates"][0]["content"]["parts"] = [{"text": tail}]
        await resp.write(f"data: {json.dumps(answer)}\n\n".encode())
        await resp.write_eof()
        return resp


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": status, "message": message, "status": kind}}, status=status
    )
