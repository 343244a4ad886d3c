"""Google Gemini's `generateContent` / `streamGenerateContent` behind the OpenAI chat API.

The key travels in the `x-goog-api-key` header, never in the URL (URLs end up
in logs). Thinking tokens are billed as output, as Google bills them.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from billing.pricing import Usage
from gateway.errors import upstream_error
from gateway.providers.base import (
    MAX_PAGES,
    ChatCall,
    ChatResult,
    ChatStream,
    Chunk,
    Listed,
    get_json,
    open_ok,
    parse_arguments,
    post_ok,
)
from gateway.sse import SSEDecoder
from gateway.upstream import Upstream

_BLOCKED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"}
_DATA_URL = re.compile(r"^data:(?P<type>[^;,]+);base64,(?P<data>.*)$", re.DOTALL)
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            parts.append({"text": str(part.get("text", ""))})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = str(image.get("url", "") if isinstance(image, Mapping) else image or "")
            found = _DATA_URL.match(url)
            if found:
                parts.append({"inlineData": {"mimeType": found["type"], "data": found["data"]}})
            else:
                mime = mimetypes.guess_type(url)[0] or "image/jpeg"
                parts.append({"fileData": {"mimeType": mime, "fileUri": url}})
    return parts


def build_body(call: ChatCall) -> dict[str, Any]:
    body = call.body
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, for the responses
    for message in body.get("messages") or ():
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_parts(message.get("content")))
            continue
        if role == "tool":
            name = names.get(str(message.get("tool_call_id")), "tool")
            content = message.get("content")
            text = content if isinstance(content, str) else orjson.dumps(content).decode()
            parts: list[dict[str, Any]] = [
                {"functionResponse": {"name": name, "response": {"content": text}}}
            ]
            turn = "user"
        else:
            parts = _parts(message.get("content"))
            turn = "model" if role == "assistant" else "user"
            for tool_call in message.get("tool_calls") or ():
                function = tool_call.get("function") or {}
                names[str(tool_call.get("id"))] = str(function.get("name"))
                args = parse_arguments(function.get("arguments"))
                parts.append({"functionCall": {"name": function.get("name"), "args": args}})
        if contents and contents[-1]["role"] == turn:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": turn, "parts": parts})
    out: dict[str, Any] = {"contents": contents, "generationConfig": _generation(call)}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = [t.get("function") or {} for t in body.get("tools") or () if isinstance(t, Mapping)]
    if tools:
        declarations = [
            {k: v for k, v in t.items() if k in ("name", "description", "parameters")}
            for t in tools
        ]
        out["tools"] = [{"functionDeclarations": declarations}]
        choice = body.get("tool_choice")
        if isinstance(choice, Mapping):
            chosen = str((choice.get("function") or {}).get("name", ""))
            config = {"mode": "ANY", "allowedFunctionNames": [chosen]}
            out["toolConfig"] = {"functionCallingConfig": config}
        elif choice in _MODES:
            out["toolConfig"] = {"functionCallingConfig": {"mode": _MODES[str(choice)]}}
    return out


def _generation(call: ChatCall) -> dict[str, Any]:
    body = call.body
    config: dict[str, Any] = {"maxOutputTokens": call.max_tokens or call.model.max_output_tokens}
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("n", "candidateCount"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") in (
        "json_object",
        "json_schema",
    ):
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema:
            config["responseSchema"] = schema
    return config


def parse_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    return Usage(
        prompt_tokens=int(raw.get("promptTokenCount") or 0),
        completion_tokens=int(raw.get("candidatesTokenCount") or 0)
        + int(raw.get("thoughtsTokenCount") or 0),
        cache_read_tokens=int(raw.get("cachedContentTokenCount") or 0),
    )


def _finish(reason: Any, called: bool) -> str:
    if called:
        return "tool_calls"
    if reason == "MAX_TOKENS":
        return "length"
    return "content_filter" if reason in _BLOCKED else "stop"


def _candidate_parts(data: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]], Any, bool]:
    """(text, tool calls, finish reason, blocked) of the first candidate."""
    candidates = data.get("candidates") or []
    if not candidates:
        return "", [], None, bool((data.get("promptFeedback") or {}).get("blockReason"))
    first = candidates[0]
    text, calls = "", list[dict[str, Any]]()
    for part in (first.get("content") or {}).get("parts") or ():
        if "text" in part and not part.get("thought"):
            text += part["text"]
        elif "functionCall" in part:
            function = part["functionCall"]
            calls.append(
                {
                    "id": f"call_{len(calls)}",
                    "type": "function",
                    "function": {
                        "name": function.get("name"),
                        "arguments": orjson.dumps(function.get("args") or {}).decode(),
                    },
                }
            )
    return text, calls, first.get("finishReason"), False


def parse_response(payload: bytes, model_id: str, provider: str) -> ChatResult:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise upstream_error(f"The provider '{provider}' answered with invalid JSON.") from exc
    if not isinstance(data, dict):
        raise upstream_error(f"The provider '{provider}' answered with no candidates.")
    text, calls, reason, blocked = _candidate_parts(data)
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    finish = "content_filter" if blocked else _finish(reason, bool(calls))
    body = {
        "id": str(data.get("responseId", "")),
        "object": "chat.completion",
        "created": 0,
        "model": model_id,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    return ChatResult(body=body, usage=parse_usage(data.get("usageMetadata")))


def parse_listing(document: Any) -> tuple[list[Listed], str | None]:
    """models.list: one page ("models/<name>" entries), and the next page's token."""
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, list):
        raise upstream_error("The models listing has no 'models' array.")
    listed = []
    for item in models:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        methods = item.get("supportedGenerationMethods") or []
        mode = (
            "embedding"
            if "embedContent" in methods and "generateContent" not in methods
            else "chat"
        )
        listed.append(
            Listed(
                item["name"].removeprefix("models/"),
                display_name=str(item.get("displayName") or ""),
                context_window=item.get("inputTokenLimit"),
                max_output=item.get("outputTokenLimit"),
                mode=mode,
            )
        )
    token = document.get("nextPageToken")
    return listed, token if isinstance(token, str) and token else None


class GeminiProvider:
    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream

    async def list_models(self, base_url: str, api_key: str, provider: str) -> list[Listed]:
        headers = {"x-goog-api-key": api_key}
        listed: list[Listed] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            url = f"{base_url}/v1beta/models?pageSize=1000" + (
                f"&pageToken={token}" if token else ""
            )
            page, token = parse_listing(
                await get_json(self._upstream, url, headers, provider, api_key)
            )
            listed += page
            if token is None:
                break
        return listed

    @staticmethod
    def _request(call: ChatCall, *, stream: bool) -> tuple[str, dict[str, str], bytes]:
        verb = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{call.base_url}/v1beta/models/{call.model.upstream_name}:{verb}"
        headers = {"x-goog-api-key": call.api_key, "content-type": "application/json"}
        return url, headers, orjson.dumps(build_body(call))

    async def chat(self, call: ChatCall) -> ChatResult:
        payload = await post_ok(self._upstream, call, self._request(call, stream=False))
        return parse_response(payload, call.model.model_id, call.provider.id)

    async def chat_stream(self, call: ChatCall) -> ChatStream:
        opened = await open_ok(self._upstream, call, self._request(call, stream=True))
        stream = ChatStream(close=opened.close)
        base = {
            "id": "",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": call.model.model_id,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> Chunk:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice]}

        async def chunks() -> AsyncIterator[Chunk]:
            decoder = SSEDecoder()
            called, reason, blocked = False, None, False
            yield chunk({"role": "assistant", "content": ""})
            try:
                async for line in opened.lines():
                    for data in decoder.feed(line):
                        piece = orjson.loads(data)
                        if not isinstance(piece, dict):
                            continue
                        stream.usage = parse_usage(piece.get("usageMetadata")) or stream.usage
                        text, calls, finish, stop = _candidate_parts(piece)
                        reason, blocked = finish or reason, blocked or stop
                        if text:
                            stream.text.append(text)
                            yield chunk({"content": text})
                        if calls:
                            called = True
                            for index, tool_call in enumerate(calls):
                                stream.text.append(tool_call["function"]["arguments"])
                                yield chunk({"tool_calls": [{"index": index, **tool_call}]})
            finally:
                opened.close()
            yield chunk({}, "content_filter" if blocked else _finish(reason, called))

        stream.chunks = chunks()
        return stream
