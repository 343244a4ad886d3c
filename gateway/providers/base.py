"""The Provider protocol: OpenAI-format chat in, OpenAI-format chat out.

Every adapter speaks the client's dialect (OpenAI chat completions) on one side
and its provider's wire format on the other. Building requests and parsing
answers are pure functions in each adapter's module; the network is reached
only through a `gateway.providers.transport.Transport` (in the gateway,
`gateway.providers.upstream.Upstream`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson

from billing.settlement import Reported
from config_store.schema import ModelConfig, Provider
from gateway.errors import GatewayError, unavailable, upstream_error
from gateway.providers.sse import SSEDecoder
from gateway.providers.transport import LineStream, Transport, UpstreamResponse
from gateway.providers.wire import Malformed

Request = tuple[str, Mapping[str, str], bytes]  # url, headers, body

Chunk = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatCall:
    body: Mapping[str, Any]  # the client's OpenAI request, validated
    model: ModelConfig
    provider: Provider
    base_url: str
    api_key: str
    max_tokens: int | None  # what the client asked for, if anything


@dataclass(slots=True)
class ChatResult:
    body: dict[str, Any]  # an OpenAI `chat.completion` object
    usage: Reported  # None when the provider reported none; an Anomaly when implausible


@dataclass(slots=True)
class ChatStream:
    """OpenAI `chat.completion.chunk` objects, without any usage-only chunk.

    `usage` is filled in as the provider reports it (an Anthropic stream reports
    its input at the start, Gemini's usage grows chunk by chunk) and
    `usage_complete` once its final figures arrived; `text` collects what was
    relayed, so that the output can be counted when the stream ends early."""

    chunks: AsyncIterator[Chunk] = field(default_factory=lambda: no_chunks())
    close: Callable[[], None] | None = None  # drops the upstream connection
    usage: Reported = None
    usage_complete: bool = False
    text: list[str] = field(default_factory=list)


async def no_chunks() -> AsyncIterator[Chunk]:
    return
    yield


class StreamDecoder(Protocol):
    """A provider's stream events in, OpenAI chunks out; pure. It records usage
    and relayed text on the ChatStream it was made for."""

    done: bool  # the provider said the stream is over: read no further

    def feed(self, data: str) -> list[Chunk]:
        """One server-sent event's data."""
        ...

    def end(self) -> list[Chunk]:
        """The upstream's body ended: the last chunks, or a GatewayError when
        the stream was cut before its end."""
        ...


def relay(
    opened: LineStream, decoder: StreamDecoder, provider: str, secret: str
) -> AsyncIterator[Chunk]:
    """The chunks of an open upstream stream, decoded; whatever the upstream
    sends (bad bytes, bad JSON, a wrong-typed field, an error event, a cut) ends
    the iteration with a GatewayError that names the provider, never another
    exception. The upstream connection is closed when the iteration ends."""

    async def chunks() -> AsyncIterator[Chunk]:
        events = SSEDecoder()
        try:
            async for line in opened.lines():
                for data in events.feed(line):
                    for chunk in decoder.feed(data):
                        yield chunk
                if decoder.done:
                    return
            for data in events.flush():
                for chunk in decoder.feed(data):
                    yield chunk
            if not decoder.done:
                for chunk in decoder.end():
                    yield chunk
        except GatewayError as exc:
            raise redacted(exc, secret) from None
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            raise malformed(provider, exc, "stream") from exc
        finally:
            opened.close()

    return chunks()


def malformed(provider: str, exc: Exception, what: str = "answer") -> GatewayError:
    """A provider's answer that could not be read, as a 502 that names why."""
    if isinstance(exc, UnicodeDecodeError):
        reason = "it is not valid UTF-8"
    elif isinstance(exc, orjson.JSONDecodeError):
        reason = "it is not valid JSON"
    elif isinstance(exc, Malformed):
        reason = str(exc)
    else:
        reason = f"unexpected content ({type(exc).__name__})"
    return upstream_error(f"The provider '{provider}' sent a malformed {what}: {reason}.")


def redacted(error: GatewayError, secret: str) -> GatewayError:
    """`error` with the provider's key removed from its message, should it be there."""
    if secret and secret in error.message:
        error.message = error.message.replace(secret, "[redacted]")
    return error


def json_answer(payload: bytes, provider: str) -> dict[str, Any]:
    """A provider's non-streamed answer: a JSON object, or a 502 saying why not
    (an error object in a 2xx answer is the provider's failure too)."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise malformed(provider, exc) from exc
    if not isinstance(data, dict):
        raise upstream_error(f"The provider '{provider}' sent a malformed answer: not an object.")
    if isinstance(data.get("error"), Mapping):
        message = data["error"].get("message")
        detail = message[:500] if isinstance(message, str) else "no details"
        raise upstream_error(f"The provider '{provider}' failed: {detail}")
    return data


@runtime_checkable
class EmbeddingProvider(Protocol):
    """An adapter that also serves OpenAI-format embeddings (`ChatCall.body` is
    the embeddings request; the result's body an OpenAI embeddings list)."""

    async def embed(self, call: ChatCall) -> ChatResult: ...


@runtime_checkable
class TextCompletionProvider(Protocol):
    """An adapter that also serves the legacy OpenAI /completions endpoint."""

    async def text_completion(self, call: ChatCall) -> ChatResult: ...

    async def text_completion_stream(self, call: ChatCall) -> ChatStream: ...


class ChatProvider(Protocol):
    async def chat(self, call: ChatCall) -> ChatResult: ...

    async def chat_stream(self, call: ChatCall) -> ChatStream: ...


def credentials(
    provider: Provider,
    env: Mapping[str, str],
    reveal: Callable[[str, str], str] = lambda stored, _: stored,
) -> tuple[str, str]:
    """The base URL and API key to use: the environment variables the provider
    row names win over the row's own values (a stored key passes through
    `reveal`, which decrypts it). Raises 503 when the key is missing."""
    base_url = (env.get(provider.base_url_env) if provider.base_url_env else None) or (
        provider.base_url
    )
    api_key = (env.get(provider.api_key_env) if provider.api_key_env else None) or (
        reveal(provider.api_key, provider.id) if provider.api_key else ""
    )
    if not api_key:
        setting = (
            f"set the environment variable {provider.api_key_env}"
            if provider.api_key_env
            else "store an API key for it"
        )
        raise unavailable(
            f"The provider '{provider.id}' has no API key configured: {setting}.",
            code="provider_not_configured",
        )
    if not base_url:
        setting = provider.base_url_env or "its base_url"
        raise unavailable(
            f"The provider '{provider.id}' has no base URL configured: set {setting}.",
            code="provider_not_configured",
        )
    return base_url.rstrip("/"), api_key


def _upstream_message(payload: bytes) -> str:
    """OpenAI, Anthropic and Gemini all put it at error.message."""
    try:
        data = orjson.loads(payload)
        message = data["error"]["message"]
        if isinstance(message, str):
            return message
    except (ValueError, KeyError, TypeError):
        pass
    return payload[:300].decode("utf-8", "replace").strip() or "no details"


def parse_arguments(raw: Any) -> Any:
    """Tool-call arguments (a JSON string in OpenAI's format) as an object; {} if malformed."""
    try:
        return orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return {}


def answer_failure(answer: UpstreamResponse, call: ChatCall) -> GatewayError:
    """A provider's non-2xx answer to `call`, as the error the client sees."""
    return upstream_failure(
        answer.status, answer.body, answer.headers, call.provider.id, call.api_key
    )


async def post_ok(upstream: Transport, call: ChatCall, request: Request) -> bytes:
    """POST and return the body of a 2xx answer; any other answer is raised."""
    url, headers, body = request
    answer = await upstream.post(url, headers, body, provider=call.provider.id)
    if answer.status >= 300:
        raise answer_failure(answer, call)
    return answer.body


async def open_ok(upstream: Transport, call: ChatCall, request: Request) -> LineStream:
    """POST for a stream and return it open when 2xx; any other answer is raised."""
    url, headers, body = request
    opened = await upstream.open_stream(url, headers, body, provider=call.provider.id)
    if isinstance(opened, UpstreamResponse):
        raise answer_failure(opened, call)
    return opened


def upstream_failure(
    status: int, payload: bytes, headers: Mapping[str, str], provider: str, secret: str
) -> GatewayError:
    """A provider's non-2xx answer as the error the client should see."""
    message = _upstream_message(payload)
    if secret:
        message = message.replace(secret, "[redacted]")
    if status in (401, 403):
        return upstream_error(
            f"The provider '{provider}' rejected the gateway's credentials (HTTP {status})."
        )
    if status == 429:
        retry = {"Retry-After": headers["Retry-After"]} if "Retry-After" in headers else {}
        return GatewayError(
            429,
            f"The provider '{provider}' is rate limiting: {message}",
            type="rate_limit_exceeded",
            code="rate_limit_exceeded",
            headers=retry,
            retryable=True,
        )
    if 400 <= status < 500:
        return GatewayError(status, f"The provider '{provider}' refused the request: {message}")
    return upstream_error(f"The provider '{provider}' failed (HTTP {status}): {message}")


@dataclass(frozen=True, slots=True)
class Listed:
    """A model as a provider's listing names it."""

    name: str
    display_name: str = ""
    context_window: int | None = None
    max_output: int | None = None
    mode: str = "chat"


@runtime_checkable
class ModelLister(Protocol):
    async def list_models(self, base_url: str, api_key: str, provider: str) -> list[Listed]:
        """Every model the provider offers (all pages); a GatewayError if it fails."""
        ...


async def get_json(
    upstream: Transport, url: str, headers: Mapping[str, str], provider: str, secret: str
) -> Any:
    """GET a JSON document; a non-2xx answer or a body that is not JSON is raised."""
    answer = await upstream.get(url, headers, provider=provider)
    if answer.status >= 300:
        raise upstream_failure(answer.status, answer.body, answer.headers, provider, secret)
    try:
        return orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        raise upstream_error(
            f"The provider '{provider}' sent a listing that is not JSON."
        ) from None


MAX_PAGES = 50  # a listing longer than this many pages is cut, not followed forever
