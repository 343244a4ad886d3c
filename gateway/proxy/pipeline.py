"""The metered path of one chat request: admit (auth, model, estimate, hold),
forward, settle. Handlers in `gateway.api` parse, call these, and respond.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from starlette.datastructures import Headers

from billing.ledger import LedgerEntry, LedgerError
from billing.meter import Hold, InsufficientBalance, SpendCapReached, UnknownAccount
from billing.pricing import Prices, Usage, hold_nano, prices_for, usd
from billing.settlement import Charge, Reported, charge
from config_store.cache import Snapshot
from config_store.schema import ApiKey, ModelConfig, Provider, User
from gateway.autoroute.decision import Ask, Route, decide, no_route, preset_of
from gateway.errors import (
    GatewayError,
    bad_request,
    insufficient_quota,
    invalid_api_key,
    model_not_allowed,
    model_not_found,
    spend_cap_reached,
    unavailable,
)
from gateway.observe import current
from gateway.providers.base import (
    ChatResult,
    ChatStream,
    Chunk,
    EmbeddingProvider,
    TextCompletionProvider,
)
from gateway.proxy.auth import authenticate
from gateway.proxy.chain import Candidate, build_chain, candidate_builder
from gateway.proxy.fallback import first_success
from gateway.proxy.ratelimit import Limit
from gateway.proxy.validation import validate_chat, validate_completion, validate_embedding
from gateway.services import Services

T = TypeVar("T")
log = logging.getLogger("gateway.proxy.pipeline")

# Fields whose tokens count towards the prompt besides the messages.
_PROMPT_EXTRAS = ("tools", "functions", "response_format", "tool_choice")


@dataclass(slots=True)
class Admitted:
    """A request that passed every check and holds its worst-case cost: the
    most that any model of its chain could cost. `served` is the model that
    answers; it starts as the requested one and moves down the chain on failure."""

    request_id: str
    key: ApiKey
    user: User
    chain: list[Candidate]
    served: Candidate
    hold: Hold
    started_at: str
    route: Route | None = None  # how `model: "auto"` was routed

    @property
    def model(self) -> ModelConfig:
        return self.served.model

    @property
    def prices(self) -> Prices:
        return self.served.prices

    @property
    def prompt_estimate(self) -> int:
        return self.served.prompt


@dataclass(frozen=True, slots=True)
class Settled:
    """A request's charge, once its ledger row is committed, and the balance after it."""

    charge: Charge
    balance: int

    @property
    def usage(self) -> Usage:
        return self.charge.usage

    @property
    def cost(self) -> int:
        """What was taken from the balance (never more than the hold)."""
        return self.charge.amount_nano


# The most choices (`n`) a request may ask for, as OpenAI allows.
MAX_CHOICES = 128


def choices_of(body: Mapping[str, Any], *names: str) -> int:
    """How many answers a request asks for (`n`, and `best_of` for legacy
    completions): every one of them is generated, and held for."""
    asked = [body.get(name) for name in names]
    counts = [v for v in asked if isinstance(v, int) and not isinstance(v, bool) and v >= 1]
    return min(max(counts, default=1), MAX_CHOICES)


async def admit(services: Services, headers: Headers, body: Mapping[str, Any]) -> Admitted:
    """A chat request, admitted or refused; `model: "auto"` (or a preset) is routed."""
    snapshot, key, user = await _caller(services, headers)
    model_name, messages, max_tokens, _ = validate_chat(body)
    choices = choices_of(body, "n")
    preset = preset_of(model_name)
    if preset is None:
        model = _requested(services, model_name, "chat", key)
        await _can_pay(services, snapshot, key, user, model, choices * (max_tokens or 0))
        prompt_of = await chat_prompt_counter(services, body, messages)
        candidate = candidate_builder(
            services, snapshot, body, prompt_of, max_tokens, user, choices
        )
        return await _admit(services, key, user, build_chain(snapshot, model, candidate))

    async def ask(model_id: str, question: list[dict[str, Any]]) -> str:
        return await _ask_classifier(services, headers, model_id, question)

    await _can_pay(services, snapshot, key, user, None, 0)
    decision = await route_chat(
        services, snapshot, headers, body, messages, user, preset, max_tokens, ask, key
    )
    if not decision.ranked:
        raise no_route(decision)
    return await _admit(services, key, user, decision.chain, decision)


async def route_chat(
    services: Services,
    snapshot: Snapshot,
    headers: Headers,
    body: Mapping[str, Any],
    messages: list[Any],
    user: User,
    preset: str,
    max_tokens: int | None,
    ask: Ask | None,
    key: ApiKey | None = None,
) -> Route:
    """The auto-router's decision for a chat request (an empty ranking when no
    model can take it); `ask=None` keeps to the local classifier."""
    prompt_of = await chat_prompt_counter(services, body, messages)
    choices = choices_of(body, "n")
    return await decide(
        snapshot,
        services.settings.router_source,
        body,
        messages,
        preset=preset,
        conversation_header=headers.get("x-conversation-id"),
        user_id=user.id,
        candidate=candidate_builder(services, snapshot, body, prompt_of, max_tokens, user, choices),
        sticky=services.sticky,
        cooldowns=services.cooldowns,
        ask=ask,
        allowed=frozenset(key.allowed_models) if key else frozenset(),
    )


async def chat_prompt_counter(
    services: Services, body: Mapping[str, Any], messages: list[Any]
) -> Callable[[ModelConfig], int]:
    """A chat prompt's size under a model's tokenizer: messages, tools and formats
    (a large prompt is counted off the event loop, once per encoding)."""
    extras = [body.get(name) for name in _PROMPT_EXTRAS]
    prompt = services.counter.chat_prompt(messages, extras)
    await prompt.count_all_if_large()
    return lambda model: prompt.tokens(model.tokenizer)


async def _ask_classifier(
    services: Services, headers: Headers, model_id: str, messages: list[dict[str, Any]]
) -> str:
    """The router's classifier model, asked as a request of its own: the caller
    pays for it at that model's price, on its own ledger row."""
    if preset_of(model_id) is not None:
        raise bad_request("The classifier model cannot itself be auto-routed.", param="model")
    body = {"model": model_id, "messages": messages, "max_tokens": 40, "temperature": 0}
    admitted = await admit(services, headers, body)
    result, _ = await complete(services, admitted)
    return "".join(message_texts(result))


async def admit_embedding(
    services: Services, headers: Headers, body: Mapping[str, Any]
) -> Admitted:
    """An embeddings request: its input is the whole prompt, and there is no output."""
    snapshot, key, user = await _caller(services, headers)
    model_name, inputs = validate_embedding(body)
    model = _requested(services, model_name, "embedding", key)
    await _can_pay(services, snapshot, key, user, model, 0)
    prompt_of = await _inputs_prompt(services, inputs)
    candidate = candidate_builder(services, snapshot, body, prompt_of, 0, user)
    return await _admit(services, key, user, build_chain(snapshot, model, candidate))


async def admit_completion(
    services: Services, headers: Headers, body: Mapping[str, Any]
) -> Admitted:
    """A legacy text completion: its prompts, and `max_tokens` (16 by default)."""
    snapshot, key, user = await _caller(services, headers)
    model_name, prompts, max_tokens = validate_completion(body)
    choices = choices_of(body, "n", "best_of")
    model = _requested(services, model_name, "completion", key)
    await _can_pay(services, snapshot, key, user, model, choices * max_tokens)
    prompt_of = await _inputs_prompt(services, prompts)
    candidate = candidate_builder(services, snapshot, body, prompt_of, max_tokens, user, choices)
    return await _admit(services, key, user, build_chain(snapshot, model, candidate))


async def _caller(services: Services, headers: Headers) -> tuple[Snapshot, ApiKey, User]:
    await services.ensure_ledger()  # no store, no ledger: nothing can be billed
    snapshot = services.cache.snapshot
    key, user = authenticate(headers, snapshot)
    services.ensure_fresh()  # several instances: only on a fresh view of the balances
    return snapshot, key, user


async def _inputs_prompt(services: Services, inputs: list[Any]) -> Callable[[ModelConfig], int]:
    """The prompt size of texts (counted with each model's tokenizer) or token arrays."""
    ids = sum(len(item) for item in inputs if isinstance(item, list))
    texts = [item for item in inputs if isinstance(item, str)]
    prompt = services.counter.texts(texts, fixed=ids)
    await prompt.count_all_if_large()
    return lambda model: prompt.tokens(model.tokenizer)


async def _can_pay(
    services: Services,
    snapshot: Snapshot,
    key: ApiKey,
    user: User,
    model: ModelConfig | None,
    output_tokens: int,
) -> None:
    """Refuse at once (402) a caller who cannot pay even the output this request
    asks for at `model`'s prices (for a routed request, whose model is not known
    yet: anything at all), before its prompt is counted or routed: that is the
    expensive part of admission."""
    floor = 1
    if model is not None:
        prices = prices_for(snapshot.priced(model), snapshot.tiers.get(user.tier_id))
        floor = max(hold_nano(0, output_tokens, prices), 1)
    try:
        available = await services.meter.available(user.id)
        room = await services.meter.key_room(key.id, key.spend_cap_nano)
    except UnknownAccount:
        raise invalid_api_key("This API key belongs to no account.") from None
    except LedgerError as exc:
        raise store_unavailable(exc) from exc
    if room is not None and floor > room:
        raise spend_cap_reached(usd(max(room, 0)), usd(floor))
    if floor > available:
        raise insufficient_quota(usd(max(available, 0)), usd(floor))


def _requested(services: Services, model_name: str, mode: str, key: ApiKey) -> ModelConfig:
    """The model a request names, if it is active, serves this kind of request,
    and the key may use it."""
    if preset_of(model_name) is not None and mode != "chat":
        raise bad_request(
            f"'{model_name}' routes chat requests only; name a {mode} model.",
            param="model",
            code="unsupported_model",
        )
    model = services.cache.model(model_name)
    if model is None or not model.is_active:
        raise model_not_found(model_name)
    if key.allowed_models and model_name not in key.allowed_models:
        raise model_not_allowed(model_name)
    if model.mode != mode:
        raise bad_request(
            f"The model '{model_name}' is a {model.mode} model; it does not serve {mode} requests.",
            param="model",
            code="unsupported_model",
        )
    return model


async def _admit(
    services: Services,
    key: ApiKey,
    user: User,
    chain: list[Candidate],
    route: Route | None = None,
) -> Admitted:
    """Check the rate limits of the first model and hold the chain's worst case.
    When the balance covers the first model but not a costlier fallback, the
    request goes ahead without the fallbacks it could not pay for."""
    if key.allowed_models:
        chain = [c for c in chain if c.model.model_id in key.allowed_models] or chain[:1]
    first = chain[0]
    if key.rpm or key.tpm or first.provider.rpm or first.provider.tpm:
        services.limiter.admit(_limits(key, first.provider, first.prompt + first.output_tokens))
    worst = max(candidate.worst_case_nano for candidate in chain)
    meter, cap = services.meter, key.spend_cap_nano
    try:
        try:
            hold = await meter.hold(user.id, worst, key_id=key.id, key_cap=cap)
        except (InsufficientBalance, SpendCapReached):
            if worst == first.worst_case_nano:
                raise
            chain = [c for c in chain if c.worst_case_nano <= first.worst_case_nano]
            hold = await meter.hold(user.id, first.worst_case_nano, key_id=key.id, key_cap=cap)
    except InsufficientBalance as exc:
        raise insufficient_quota(usd(max(exc.available_nano, 0)), usd(exc.needed_nano)) from None
    except SpendCapReached as exc:
        raise spend_cap_reached(usd(max(exc.available_nano, 0)), usd(exc.needed_nano)) from None
    except UnknownAccount:
        raise invalid_api_key("This API key belongs to no account.") from None
    except LedgerError as exc:
        raise store_unavailable(exc) from exc
    request_id = services.request_ids.next()
    record = current()
    if record is not None and not record.request_id:  # a classifier call keeps its own
        record.request_id, record.key_prefix = request_id, key.prefix
        record.model, record.provider = first.model.model_id, first.provider.id
    return Admitted(
        request_id=request_id,
        key=key,
        user=user,
        chain=chain,
        served=first,
        hold=hold,
        started_at=datetime.now(UTC).isoformat(),
        route=route,
    )


@functools.lru_cache(maxsize=1024)
def prices_json(prices: Prices) -> str:
    """The copy of the prices kept on each ledger row; few distinct values, so cached."""
    return orjson.dumps(prices.as_dict()).decode()


def _limits(key: ApiKey, provider: Provider, tokens: int) -> list[Limit]:
    """The key's two limits, then the provider's two."""
    return [
        Limit("key", key.key_hash, "requests", key.rpm, 1),
        Limit("key", key.key_hash, "tokens", key.tpm, tokens),
        Limit("provider", provider.id, "requests", provider.rpm, 1),
        Limit("provider", provider.id, "tokens", provider.tpm, tokens),
    ]


def ledger_entry(admitted: Admitted, billed: Charge) -> LedgerEntry:
    usage = billed.usage
    return LedgerEntry(
        request_id=admitted.request_id,
        user_id=admitted.user.id,
        kind="charge",
        amount_nano=-billed.amount_nano,
        created_at=admitted.started_at,
        model_id=admitted.model.model_id,
        provider=admitted.model.provider,
        key_prefix=admitted.key.prefix,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        prices=prices_json(admitted.prices),
        key_id=admitted.key.id,
        uncollected_nano=billed.uncollected_nano,
        usage_source=billed.source,
        usage_raw=billed.raw,
    )


def charge_for(
    services: Services,
    admitted: Admitted,
    reported: Reported,
    texts: Callable[[], list[str]],
    *,
    complete: bool = True,
) -> Charge:
    """The money rule (`billing.settlement`) applied to this request: `texts`
    gives what was relayed, for our own count when the provider's is missing,
    implausible or unfinished. Noted on the request's record for its metrics."""

    def counted() -> Usage:
        output = services.counter.count("".join(texts()), admitted.model.tokenizer)
        return Usage(prompt_tokens=admitted.prompt_estimate, completion_tokens=output)

    own = None if complete and isinstance(reported, Usage) else counted()
    billed = charge(
        admitted.hold.amount_nano, admitted.prices, reported, own or Usage(0, 0), complete=complete
    )
    record = current()
    if record is not None and record.request_id == admitted.request_id:
        record.prompt_tokens = billed.usage.prompt_tokens
        record.completion_tokens = billed.usage.completion_tokens
        record.cost_nano = billed.amount_nano
        record.uncollected_nano = billed.uncollected_nano
        record.usage_source = billed.source
    return billed


async def settle(
    services: Services,
    admitted: Admitted,
    reported: Reported,
    texts: Callable[[], list[str]],
    *,
    complete: bool = True,
) -> Settled:
    """Charge the request and wait for its ledger row to commit. Whatever
    happens, the hold ends here: charged, or released if nothing could be."""
    try:
        billed = charge_for(services, admitted, reported, texts, complete=complete)
        balance = await services.meter.settle(admitted.hold, ledger_entry(admitted, billed))
    except LedgerError as exc:
        raise unavailable(
            "The request could not be recorded in the ledger, so it is not delivered.",
            code="ledger_unavailable",
        ) from exc
    finally:
        services.meter.release(admitted.hold)
    return Settled(billed, balance)


def store_unavailable(exc: Exception) -> GatewayError:
    """The balance could not be read from the store: nothing can be billed."""
    log.warning("balance unavailable: %s", exc)
    return unavailable(
        "The balance store is unavailable, so requests cannot be billed right now.",
        code="store_unavailable",
    )


def cost_headers(admitted: Admitted, settled: Settled | None = None) -> dict[str, str]:
    headers = {"x-request-id": admitted.request_id, "x-gateway-model": admitted.model.model_id}
    if admitted.route is not None:
        classification = admitted.route.classification
        headers["x-gateway-route-category"] = classification.category
        headers["x-gateway-route-complexity"] = classification.complexity
        headers["x-gateway-route-preset"] = admitted.route.preset
    if settled is not None:
        headers["x-gateway-cost-usd"] = usd(settled.cost)
        headers["x-gateway-balance-usd"] = usd(settled.balance)
    return headers


def usage_body(usage: Usage, cost: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cost": usd(cost),
    }
    if usage.cache_read_tokens:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    return body


def message_texts(result: ChatResult) -> list[str]:
    texts: list[str] = []
    for choice in result.body.get("choices") or ():
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):
            texts.append(message["content"])
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            texts.extend(str(function.get(k) or "") for k in ("name", "arguments"))
    return texts


async def _serve(
    services: Services, admitted: Admitted, attempt: Callable[[Candidate], Awaitable[T]]
) -> T:
    """Run `attempt` down the chain; the first success becomes the served model.
    If every model fails (or the client goes away) the hold ends without a charge.
    The requested model's provider limits were checked at admission; a fallback's
    are checked when the chain reaches it."""
    first = admitted.chain[0]

    def within_limits(candidate: Candidate) -> None:
        provider = candidate.provider
        if candidate is not first and (provider.rpm or provider.tpm):
            tokens = candidate.prompt + candidate.output_tokens
            services.limiter.admit(_limits(admitted.key, provider, tokens)[2:])

    began = time.perf_counter()
    try:
        served, answer = await first_success(
            admitted.chain,
            _cooldown_names,
            attempt,
            services.cooldowns,
            max_retry_wait=services.settings.max_retry_wait,
            check=within_limits,
        )
    except BaseException:
        services.meter.release(admitted.hold)
        raise
    admitted.served = served
    record = current()
    if record is not None and record.request_id == admitted.request_id:
        record.model, record.provider = served.model.model_id, served.provider.id
        record.upstream_seconds = time.perf_counter() - began
    if admitted.route is not None:
        route = admitted.route
        services.sticky.remember(admitted.user.id, route.conversation, served.model.model_id)
    return answer


async def complete(services: Services, admitted: Admitted) -> tuple[ChatResult, Settled]:
    """Forward a non-streaming request down its chain and settle it at the
    model that served it."""
    result = await _serve(services, admitted, _chat)
    return result, await settle(services, admitted, result.usage, lambda: message_texts(result))


async def open_stream(services: Services, admitted: Admitted) -> ChatStream:
    """Open a stream down the chain; a stream counts as open once its first
    chunk arrived, so a provider that fails before that is fallen back from."""
    return await _serve(services, admitted, _primed_stream)


async def embed(services: Services, admitted: Admitted) -> tuple[ChatResult, Settled]:
    """Forward an embeddings request down its chain and settle it (no output)."""
    result = await _serve(services, admitted, _embed)
    return result, await settle(services, admitted, result.usage, list)


async def text_completion(services: Services, admitted: Admitted) -> tuple[ChatResult, Settled]:
    """Forward a legacy completion request down its chain and settle it."""
    result = await _serve(services, admitted, _text_completion)

    def texts() -> list[str]:
        return [str(c.get("text") or "") for c in result.body.get("choices") or ()]

    return result, await settle(services, admitted, result.usage, texts)


async def open_text_completion_stream(services: Services, admitted: Admitted) -> ChatStream:
    return await _serve(services, admitted, _primed_text_stream)


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


def _cooldown_names(candidate: Candidate) -> tuple[str, ...]:
    return (candidate.provider.id, f"model:{candidate.model.model_id}")


async def _chat(candidate: Candidate) -> ChatResult:
    return await candidate.adapter.chat(candidate.call)


async def _primed_stream(candidate: Candidate) -> ChatStream:
    return await _primed(await candidate.adapter.chat_stream(candidate.call))


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
