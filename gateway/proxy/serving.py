"""The middle stage of the metered path: an admitted request sent down its
chain until a model answers (`proxy.fallback.first_success`), then settled at
the model that served it. A stream counts as open once its first chunk has
arrived, so a provider that fails before that is fallen back from."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from gateway.errors import bad_request
from gateway.observe import current
from gateway.providers.base import (
    ChatResult,
    ChatStream,
    Chunk,
    EmbeddingProvider,
    TextCompletionProvider,
)
from gateway.proxy.admitted import Admitted, Answered
from gateway.proxy.chain import Candidate
from gateway.proxy.core import Core
from gateway.proxy.fallback import first_success
from gateway.proxy.ratelimit import provider_limits
from gateway.proxy.settlement import message_texts, settle

T = TypeVar("T")


async def complete(core: Core, admitted: Admitted) -> Answered:
    """Forward a non-streaming chat request down its chain and settle it."""
    result = await _serve(core, admitted, _chat)
    settled = await settle(core, admitted, result.usage, lambda: message_texts(result))
    return Answered(result, settled)


async def open_stream(core: Core, admitted: Admitted) -> ChatStream:
    """Open a chat stream down the chain; `proxy.streaming` relays and settles it."""
    return await _serve(core, admitted, _primed_stream)


async def embed(core: Core, admitted: Admitted) -> Answered:
    """Forward an embeddings request down its chain and settle it (no output)."""
    result = await _serve(core, admitted, _embed)
    return Answered(result, await settle(core, admitted, result.usage, list))


async def text_completion(core: Core, admitted: Admitted) -> Answered:
    """Forward a legacy completion request down its chain and settle it."""
    result = await _serve(core, admitted, _text_completion)

    def texts() -> list[str]:
        return [str(c.get("text") or "") for c in result.body.get("choices") or ()]

    return Answered(result, await settle(core, admitted, result.usage, texts))


async def open_text_completion_stream(core: Core, admitted: Admitted) -> ChatStream:
    return await _serve(core, admitted, _primed_text_stream)


async def _serve(core: Core, admitted: Admitted, attempt: Callable[[Candidate], Awaitable[T]]) -> T:
    """Run `attempt` down the chain; the first success becomes the served model.
    If every model fails (or the client goes away) the hold ends without a charge.
    The requested model's provider limits were checked at admission; a fallback's
    are checked when the chain reaches it."""
    first = admitted.chain[0]

    def within_limits(candidate: Candidate) -> None:
        provider = candidate.provider
        if candidate is not first and (provider.rpm or provider.tpm):
            tokens = candidate.prompt + candidate.output_tokens
            core.limiter.admit(provider_limits(provider, tokens))

    began = time.perf_counter()
    try:
        served, answer = await first_success(
            admitted.chain,
            _cooldown_names,
            attempt,
            core.cooldowns,
            max_retry_wait=core.max_retry_wait,
            check=within_limits,
        )
    except BaseException:
        core.meter.release(admitted.hold)
        raise
    admitted.served = served
    record = current()
    if record is not None and record.request_id == admitted.request_id:
        record.model, record.provider = served.model.model_id, served.provider.id
        record.upstream_seconds = time.perf_counter() - began
    if admitted.route is not None:
        route = admitted.route
        core.sticky.remember(admitted.user.id, route.conversation, served.model.model_id)
    return answer


def _cooldown_names(candidate: Candidate) -> tuple[str, ...]:
    return (candidate.provider.id, f"model:{candidate.model.model_id}")


async def _chat(candidate: Candidate) -> ChatResult:
    return await candidate.adapter.chat(candidate.call)


async def _primed_stream(candidate: Candidate) -> ChatStream:
    return await _primed(await candidate.adapter.chat_stream(candidate.call))


def _text_adapter(candidate: Candidate) -> TextCompletionProvider:
    adapter = candidate.adapter
    if not isinstance(adapter, TextCompletionProvider):
        raise bad_request(
            f"The provider '{candidate.provider.id}' does not serve text completions.",
            param="model",
            code="unsupported_model",
        )
    return adapter


async def _text_completion(candidate: Candidate) -> ChatResult:
    return await _text_adapter(candidate).text_completion(candidate.call)


async def _primed_text_stream(candidate: Candidate) -> ChatStream:
    opened = await _text_adapter(candidate).text_completion_stream(candidate.call)
    return await _primed(opened)


async def _embed(candidate: Candidate) -> ChatResult:
    adapter = candidate.adapter
    if not isinstance(adapter, EmbeddingProvider):
        raise bad_request(
            f"The provider '{candidate.provider.id}' does not serve embeddings.",
            param="model",
            code="unsupported_model",
        )
    return await adapter.embed(candidate.call)


async def _primed(stream: ChatStream) -> ChatStream:
    """Read the first chunk now, so that a stream failing before it is fallen back from."""
    try:
        first = await anext(stream.chunks)
    except StopAsyncIteration:
        return stream
    except BaseException:
        if stream.close is not None:
            stream.close()
        raise
    rest = stream.chunks

    async def chunks() -> AsyncIterator[Chunk]:
        yield first
        async for chunk in rest:
            yield chunk

    stream.chunks = chunks()
    return stream
