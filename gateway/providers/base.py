"""The Provider protocol: OpenAI-format chat in, OpenAI-format chat out.

Every adapter speaks the client's dialect (OpenAI chat completions) on one side
and its provider's wire format on the other. Building requests and parsing
answers are pure functions in each adapter's module; the network is reached
only through `gateway.upstream`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson

from billing.pricing import Usage
from config_store.schema import ModelConfig, Provider
from gateway.errors import GatewayError, unavailable, upstream_error
from gateway.upstream import Upstream, UpstreamResponse, UpstreamStream

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
    usage: Usage | None  # None when the provider reported none


@dataclass(slots=True)
class ChatStream:
    """OpenAI `chat.completion.chunk` objects, without any usage-only chunk.

    `usage` is filled in as the provider reports it; `text` collects what was
    relayed so that tokens can be counted when no usage arrives."""

    chunks: AsyncIterator[Chunk] = field(default_factory=lambda: no_chunks())
    close: Callable[[], None] | None = None  # drops the upstream connection
    usage: Usage | None = None
    text: list[str] = field(default_factory=list)


async def no_chunks() -> AsyncIterator[Chunk]:
    return
    yield


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


async def post_ok(upstream: Upstream, call: ChatCall, request: Request) -> bytes:
    """POST and return the body of a 2xx answer; any other answer is raised."""
    url, headers, body = request
    answer = await upstream.post(url, headers, body, provider=call.provider.id)
    if answer.status >= 300:
        raise answer_failure(answer, call)
    return answer.body


async def open_ok(upstream: Upstream, call: ChatCall, request: Request) -> UpstreamStream:
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
    upstream: Upstream, url: str, headers: Mapping[str, str], provider: str, secret: str
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
