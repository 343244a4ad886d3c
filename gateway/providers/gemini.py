"""Google Gemini's `generateContent` / `streamGenerateContent` behind the OpenAI chat API.

The key travels in the `x-goog-api-key` header, never in the URL (URLs end up
in logs). Thinking tokens are billed as output, as Google bills them.
"""

from __future__ import annotations

import mimetypes
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from billing.pricing import Usage
from billing.settlement import Anomaly, Implausible, Reported, plausible, token_count
from gateway.errors import upstream_error
from gateway.providers.base import (
    MAX_PAGES,
    ChatCall,
    ChatResult,
    ChatStream,
    Chunk,
    Listed,
    get_json,
    json_answer,
    malformed,
    open_ok,
    parse_arguments,
    post_ok,
    relay,
)
from gateway.providers.transport import Transport
from gateway.providers.wire import (
    Malformed,
    error_message,
    index,
    items,
    obj,
    opt_obj,
    opt_str,
    text,
)

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


def parse_usage(raw: Any) -> Reported:
    """Gemini's usageMetadata (thinking tokens are output, as Google bills them):
    None when absent, an Anomaly when not plausible."""
    if raw is None:
        return None
    try:
        usage = obj(raw, "usageMetadata")
        return plausible(
            Usage(
                prompt_tokens=token_count(usage, "promptTokenCount"),
                completion_tokens=token_count(usage, "candidatesTokenCount", required=False)
                + token_count(usage, "thoughtsTokenCount", required=False),
                cache_read_tokens=token_count(usage, "cachedContentTokenCount", required=False),
            )
        )
    except (Malformed, Implausible):
        return Anomaly.of(raw)


def _finish(reason: Any, called: bool) -> str:
    if called:
        return "tool_calls"
    if reason == "MAX_TOKENS":
        return "length"
    return "content_filter" if reason in _BLOCKED else "stop"


@dataclass(frozen=True, slots=True)
class _Candidate:
    index: int
    text: str  # thoughts left out
    calls: list[tuple[str, str]]  # (function name, arguments as JSON text)
    finish: str | None  # Gemini's finishReason, once it says


def _candidates(data: Mapping[str, Any]) -> list[_Candidate]:
    """Every candidate of an answer or a chunk, checked where we read it."""
    found = []
    for n, candidate in enumerate(items(data.get("candidates"), "candidates")):
        where = f"candidates[{n}]"
        content = opt_obj(candidate.get("content"), f"{where}.content")
        said, calls = "", []
        for m, part in enumerate(items(content.get("parts"), f"{where}.content.parts")):
            if "functionCall" in part:
                function = obj(part["functionCall"], f"{where}.parts[{m}].functionCall")
                name = text(function.get("name"), f"{where}.parts[{m}].functionCall.name")
                args = opt_obj(function.get("args"), f"{where}.parts[{m}].functionCall.args")
                calls.append((name, orjson.dumps(args).decode()))
            else:
                piece = text(part.get("text"), f"{where}.parts[{m}].text")
                if not part.get("thought"):
                    said += piece
        finish = opt_str(candidate.get("finishReason"), f"{where}.finishReason")
        found.append(_Candidate(index(candidate.get("index"), where, n), said, calls, finish))
    return found


def _blocked(data: Mapping[str, Any]) -> bool:
    feedback = opt_obj(data.get("promptFeedback"), "promptFeedback")
    return bool(opt_str(feedback.get("blockReason"), "promptFeedback.blockReason"))


def _tool_call(name: str, arguments: str, number: int) -> dict[str, Any]:
    return {
        "id": f"call_{number}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def parse_response(payload: bytes, model_id: str, provider: str) -> ChatResult:
    data = json_answer(payload, provider)
    try:
        candidates, blocked = _candidates(data), _blocked(data)
        answer_id = text(data.get("responseId"), "responseId")
    except Malformed as exc:
        raise malformed(provider, exc) from exc
    choices = []
    for candidate in sorted(candidates, key=lambda c: c.index):
        message: dict[str, Any] = {"role": "assistant", "content": candidate.text}
        if candidate.calls:
            message["tool_calls"] = [
                _tool_call(name, args, n) for n, (name, args) in enumerate(candidate.calls)
            ]
        finish = _finish(candidate.finish, bool(candidate.calls))
        choice = {"index": candidate.index, "message": message, "finish_reason": finish}
        choices.append({**choice, "logprobs": None})
    if not choices:
        message = {"role": "assistant", "content": ""}
        finish = "content_filter" if blocked else "stop"
        choices = [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]
    body = {
        "id": answer_id,
        "object": "chat.completion",
        "created": 0,
        "model": model_id,
        "choices": choices,
    }
    return ChatResult(body=body, usage=parse_usage(data.get("usageMetadata")))


class GeminiStream:
    """Gemini's stream chunks in, OpenAI chunks out; no I/O. Gemini's usage is
    cumulative, so the stream's usage is always the latest figures; they are
    final once the stream ends after its candidates said why they finished."""

    def __init__(self, model_id: str, stream: ChatStream) -> None:
        self._stream = stream
        # Gemini names its answer in each chunk (`responseId`); until one does, an id of our own.
        answer_id = f"chatcmpl-gemini-{uuid.uuid4().hex[:24]}"
        self._base = {
            "id": answer_id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model_id,
        }
        self._named = False
        self._started = False
        self._calls: dict[int, int] = {}  # candidate -> tool calls relayed so far
        self._reasons: dict[int, str] = {}  # candidate -> finish reason
        self._blocked = False
        self.done = False  # Gemini has no end marker: the body ends

    def _chunk(self, at: int, delta: dict[str, Any], finish: str | None = None) -> Chunk:
        choice = {"index": at, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self._base, "choices": [choice]}

    def feed(self, data: str) -> list[Chunk]:
        piece = obj(orjson.loads(data), "a chunk")
        failure = error_message(piece)
        if failure is not None:
            raise upstream_error(f"The provider failed mid-stream: {failure}")
        if piece.get("usageMetadata") is not None:
            self._stream.usage = parse_usage(piece["usageMetadata"])
        self._blocked = self._blocked or _blocked(piece)
        if not self._named:
            named = text(piece.get("responseId"), "responseId")
            if named:
                self._base["id"], self._named = named, True
        out = [] if self._started else [self._chunk(0, {"role": "assistant", "content": ""})]
        self._started = True
        for candidate in _candidates(piece):
            at = candidate.index
            if candidate.text:
                self._stream.text.append(candidate.text)
                out.append(self._chunk(at, {"content": candidate.text}))
            for name, arguments in candidate.calls:
                number = self._calls[at] = self._calls.get(at, -1) + 1
                self._stream.text += [name, arguments]
                call = {"index": number, **_tool_call(name, arguments, number)}
                out.append(self._chunk(at, {"tool_calls": [call]}))
            if candidate.finish:
                self._reasons[at] = candidate.finish
        return out

    def end(self) -> list[Chunk]:
        """The body ended: whole if every candidate said why it finished (or the
        prompt was blocked); else the stream was cut."""
        if not self._reasons and not self._blocked:
            raise upstream_error("The provider's stream ended before its answer was finished.")
        self._stream.usage_complete = True
        out = [] if self._started else [self._chunk(0, {"role": "assistant", "content": ""})]
        if not self._reasons:
            return [*out, self._chunk(0, {}, "content_filter")]
        return out + [
            self._chunk(at, {}, _finish(reason, at in self._calls))
            for at, reason in sorted(self._reasons.items())
        ]


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
    def __init__(self, upstream: Transport) -> None:
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
        decoder = GeminiStream(call.model.model_id, stream)
        stream.chunks = relay(opened, decoder, call.provider.id, call.api_key)
        return stream
