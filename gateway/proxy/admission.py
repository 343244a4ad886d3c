"""The first stage of the metered path: a request checked, priced and held
before any provider is called. The caller (`proxy.auth`) and its fields
(`proxy.validation`), the model, a can-pay check before anything costly, the
prompt counted, the chain of candidates (`proxy.chain`, or `gateway.autoroute`
for `auto`), the rate limits, and the hold of the chain's worst case."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from starlette.datastructures import Headers

from billing.ledger_types import LedgerError
from billing.meter import InsufficientBalance, UnknownAccount
from billing.pricing import hold_nano, prices_for, usd
from billing.spending import BudgetExceeded
from config_store.schema import ApiKey, ModelConfig, User
from config_store.snapshot import Snapshot
from gateway.autoroute.decision import Ask, Decision, decide, no_route, preset_of
from gateway.errors import (
    GatewayError,
    bad_request,
    insufficient_quota,
    invalid_api_key,
    model_not_allowed,
    model_not_found,
    unavailable,
)
from gateway.observe import CURRENT, current
from gateway.proxy.admitted import Admitted
from gateway.proxy.auth import authenticate
from gateway.proxy.budgets import Payer, end_user_of, payer, refusal
from gateway.proxy.chain import Candidate, CandidateFor, build_chain, candidate_builder
from gateway.proxy.core import Core
from gateway.proxy.ratelimit import key_limits, provider_limits
from gateway.proxy.serving import complete
from gateway.proxy.settlement import message_texts
from gateway.proxy.validation import validate_chat, validate_completion, validate_embedding

log = logging.getLogger("gateway.proxy.admission")

# Fields whose tokens count towards the prompt besides the messages.
_PROMPT_EXTRAS = ("tools", "functions", "response_format", "tool_choice")


# The most choices (`n`) a request may ask for, as OpenAI allows.
MAX_CHOICES = 128
_LOGGED_NAME_LIMIT = 200  # characters of a requested model's name kept on its log line


def choices_of(body: Mapping[str, Any], *names: str) -> int:
    """How many answers a request asks for (`n`, and `best_of` for legacy
    completions): every one of them is generated, and held for."""
    asked = [body.get(name) for name in names]
    counts = [v for v in asked if isinstance(v, int) and not isinstance(v, bool) and v >= 1]
    return min(max(counts, default=1), MAX_CHOICES)


async def admit(core: Core, headers: Headers, body: Mapping[str, Any]) -> Admitted:
    """A chat request, admitted or refused; `model: "auto"` (or a preset) is routed."""
    snapshot, key, user = await _caller(core, headers)
    model_name, messages, max_tokens, _ = validate_chat(body)
    _name_on_record(model_name)
    pays = payer(snapshot, key, user, end_user_of(headers, body))
    choices = choices_of(body, "n")
    preset = preset_of(model_name)
    if preset is None:
        model = requested_model(core, model_name, "chat", key)
        await core.counter.loaded(model.tokenizer)
        await _can_pay(core, snapshot, pays, user, model, choices * (max_tokens or 0))
        prompt_of = await chat_prompt_counter(core, body, messages)
        candidate = _candidates(core, snapshot, body, prompt_of, max_tokens, user, choices)
        return await _admit(core, key, user, pays, build_chain(snapshot, model, candidate))

    async def ask(model_id: str, question: list[dict[str, Any]]) -> str:
        return await _ask_classifier(core, headers, model_id, question)

    await _can_pay(core, snapshot, pays, user, None, 0)
    decision = await route_chat(
        core, snapshot, headers, body, messages, user, preset, max_tokens, ask, key
    )
    if not decision.ranked:
        raise no_route(decision)
    return await _admit(core, key, user, pays, decision.chain, decision)


async def route_chat(
    core: Core,
    snapshot: Snapshot,
    headers: Headers,
    body: Mapping[str, Any],
    messages: list[Any],
    user: User,
    preset: str,
    max_tokens: int | None,
    ask: Ask | None,
    key: ApiKey | None = None,
) -> Decision:
    """The auto-router's decision for a chat request (an empty ranking when no
    model can take it); `ask=None` keeps to the local classifier."""
    prompt_of = await chat_prompt_counter(core, body, messages)
    choices = choices_of(body, "n")
    return await decide(
        snapshot,
        core.router_source,
        body,
        messages,
        preset=preset,
        conversation_header=headers.get("x-conversation-id"),
        user_id=user.id,
        candidate=_candidates(core, snapshot, body, prompt_of, max_tokens, user, choices),
        sticky=core.sticky,
        cooldowns=core.cooldowns,
        ask=ask,
        allowed=frozenset(key.allowed_models) if key else frozenset(),
    )


async def chat_prompt_counter(
    core: Core, body: Mapping[str, Any], messages: list[Any]
) -> Callable[[ModelConfig], int]:
    """A chat prompt's size under a model's tokenizer: messages, tools and formats
    (a large prompt is counted off the event loop, once per encoding)."""
    extras = [body.get(name) for name in _PROMPT_EXTRAS]
    prompt = core.counter.chat_prompt(messages, extras)
    await prompt.count_all_if_large()
    return lambda model: prompt.tokens(model.tokenizer)


async def _ask_classifier(
    core: Core, headers: Headers, model_id: str, messages: list[dict[str, Any]]
) -> str:
    """The router's classifier model, asked as a request of its own: the caller
    pays for it at that model's price, on its own ledger row, under an id of its
    own. The client's request keeps its record (its id, model and cost) to itself."""
    if preset_of(model_id) is not None:
        raise bad_request("The classifier model cannot itself be auto-routed.", param="model")
    body = {"model": model_id, "messages": messages, "max_tokens": 40, "temperature": 0}
    token = CURRENT.set(None)
    try:
        admitted = await admit(core, headers, body)
        answered = await complete(core, admitted)
    finally:
        CURRENT.reset(token)
    return "".join(message_texts(answered.result))


async def admit_embedding(core: Core, headers: Headers, body: Mapping[str, Any]) -> Admitted:
    """An embeddings request: its input is the whole prompt, and there is no output."""
    snapshot, key, user = await _caller(core, headers)
    model_name, inputs = validate_embedding(body)
    _name_on_record(model_name)
    pays = payer(snapshot, key, user, end_user_of(headers, body))
    model = requested_model(core, model_name, "embedding", key)
    await core.counter.loaded(model.tokenizer)
    await _can_pay(core, snapshot, pays, user, model, 0)
    prompt_of = await _inputs_prompt(core, inputs)
    candidate = _candidates(core, snapshot, body, prompt_of, 0, user)
    return await _admit(core, key, user, pays, build_chain(snapshot, model, candidate))


async def admit_completion(core: Core, headers: Headers, body: Mapping[str, Any]) -> Admitted:
    """A legacy text completion: its prompts, and `max_tokens` (16 by default)."""
    snapshot, key, user = await _caller(core, headers)
    model_name, prompts, max_tokens = validate_completion(body)
    _name_on_record(model_name)
    choices = choices_of(body, "n", "best_of")
    pays = payer(snapshot, key, user, end_user_of(headers, body))
    model = requested_model(core, model_name, "completion", key)
    await core.counter.loaded(model.tokenizer)
    await _can_pay(core, snapshot, pays, user, model, choices * max_tokens)
    prompt_of = await _inputs_prompt(core, prompts)
    candidate = _candidates(core, snapshot, body, prompt_of, max_tokens, user, choices)
    return await _admit(core, key, user, pays, build_chain(snapshot, model, candidate))


def _name_on_record(model_name: str) -> None:
    """The model asked for, on the request's log line and metrics from now on, so
    that a refusal is counted against it (the metrics bound unknown names). The
    model that serves it replaces it once admitted."""
    record = current()
    if record is not None and not record.model:
        record.model = model_name[:_LOGGED_NAME_LIMIT]


async def _caller(core: Core, headers: Headers) -> tuple[Snapshot, ApiKey, User]:
    await core.billable()  # no store, no ledger: nothing can be billed
    snapshot = core.cache.snapshot
    key, user = authenticate(headers, snapshot)
    record = current()
    if record is not None and not record.key_prefix:
        record.key_prefix = key.prefix
    core.fresh()  # several instances: only on a fresh view of the balances
    return snapshot, key, user


async def _inputs_prompt(core: Core, inputs: list[Any]) -> Callable[[ModelConfig], int]:
    """The prompt size of texts (counted with each model's tokenizer) or token arrays."""
    ids = sum(len(item) for item in inputs if isinstance(item, list))
    texts = [item for item in inputs if isinstance(item, str)]
    prompt = core.counter.texts(texts, fixed=ids)
    await prompt.count_all_if_large()
    return lambda model: prompt.tokens(model.tokenizer)


async def _can_pay(
    core: Core,
    snapshot: Snapshot,
    pays: Payer,
    user: User,
    model: ModelConfig | None,
    output_tokens: int,
) -> None:
    """Refuse at once (402) a caller who cannot pay even the output this request
    asks for at `model`'s prices (for a routed request, whose model is not known
    yet: anything at all), from its balance and within its budgets, before its
    prompt is counted or routed: that is the expensive part of admission."""
    floor = 1
    if model is not None:
        prices = prices_for(snapshot.priced(model), snapshot.tiers.get(user.tier_id))
        floor = max(hold_nano(0, output_tokens, prices), 1)
    try:
        await core.meter.check(pays.account, floor, pays.limits)
    except BudgetExceeded as exc:
        raise refusal(exc) from None
    except InsufficientBalance as exc:
        raise insufficient_quota(usd(max(exc.available_nano, 0)), usd(exc.needed_nano)) from None
    except UnknownAccount:
        raise invalid_api_key("This API key belongs to no account.") from None
    except LedgerError as exc:
        raise store_unavailable(exc) from exc


def requested_model(core: Core, model_name: str, mode: str, key: ApiKey) -> ModelConfig:
    """The model a request names, if it is active, serves this kind of request,
    and the key may use it."""
    if preset_of(model_name) is not None and mode != "chat":
        raise bad_request(
            f"'{model_name}' routes chat requests only; name a {mode} model.",
            param="model",
            code="unsupported_model",
        )
    model = core.cache.model(model_name)
    if model is None or not model.is_active:
        raise model_not_found(model_name)
    record = current()
    if record is not None and not record.provider:
        record.provider = model.provider
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
    core: Core,
    key: ApiKey,
    user: User,
    pays: Payer,
    chain: list[Candidate],
    route: Decision | None = None,
) -> Admitted:
    """Check the rate limits of the first model and hold the chain's worst case,
    from the payer's balance and within every budget on its path. When they
    cover the first model but not a costlier fallback, the request goes ahead
    without the fallbacks it could not pay for."""
    if key.allowed_models:
        chain = [c for c in chain if c.model.model_id in key.allowed_models] or chain[:1]
    first = chain[0]
    if key.rpm or key.tpm or first.provider.rpm or first.provider.tpm:
        tokens = first.prompt + first.output_tokens
        core.limiter.admit(key_limits(key, tokens) + provider_limits(first.provider, tokens))
    worst = max(candidate.worst_case_nano for candidate in chain)
    meter = core.meter
    try:
        try:
            hold = await meter.hold(pays.account, worst, pays.limits)
        except (InsufficientBalance, BudgetExceeded):
            if worst == first.worst_case_nano:
                raise
            chain = [c for c in chain if c.worst_case_nano <= first.worst_case_nano]
            hold = await meter.hold(pays.account, first.worst_case_nano, pays.limits)
    except InsufficientBalance as exc:
        raise insufficient_quota(usd(max(exc.available_nano, 0)), usd(exc.needed_nano)) from None
    except BudgetExceeded as exc:
        raise refusal(exc) from None
    except UnknownAccount:
        raise invalid_api_key("This API key belongs to no account.") from None
    except LedgerError as exc:
        raise store_unavailable(exc) from exc
    record = current()
    if record is not None and record.request_id:  # minted as the request entered
        request_id = record.request_id
        record.key_prefix = key.prefix
        record.model, record.provider = first.model.model_id, first.provider.id
    else:  # a request of the gateway's own (the router's classifier)
        request_id = core.request_ids.next()
    return Admitted(
        request_id=request_id,
        key=key,
        user=user,
        chain=chain,
        served=first,
        hold=hold,
        started_at=hold.at,
        route=route,
        payer=pays,
    )


def _candidates(
    core: Core,
    snapshot: Snapshot,
    body: Mapping[str, Any],
    prompt_of: Callable[[ModelConfig], int],
    max_tokens: int | None,
    user: User,
    choices: int = 1,
) -> CandidateFor:
    return candidate_builder(
        core.adapters, core.credentials, snapshot, body, prompt_of, max_tokens, user, choices
    )


def store_unavailable(exc: Exception) -> GatewayError:
    """The balance could not be read from the store: nothing can be billed."""
    log.warning("balance unavailable: %s", exc)
    return unavailable(
        "The balance store is unavailable, so requests cannot be billed right now.",
        code="store_unavailable",
    )
