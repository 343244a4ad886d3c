"""A request's chain: the requested model, ready to call, then its fallbacks.

The requested model's problems (no provider, disabled, no credentials, too
small a context window) are the request's errors; a fallback with such a
problem is left out. Fallbacks are ordered by their provider's and their own
`fallback_priority`, then by their place in the model's `fallbacks` list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from billing.pricing import Prices, hold_nano, prices_for
from config_store.schema import ModelConfig, PricingTier, Provider, User
from config_store.snapshot import Snapshot
from gateway.errors import GatewayError, bad_request, unavailable
from gateway.providers.base import ChatCall, ChatProvider


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model of a request's chain, ready to be called."""

    model: ModelConfig
    provider: Provider
    adapter: ChatProvider
    call: ChatCall
    prices: Prices
    prompt: int  # estimated with this model's tokenizer
    output_cap: int  # per choice
    choices: int = 1  # answers asked for (`n`): each may use the whole output cap

    @property
    def output_tokens(self) -> int:
        """The most output this request may generate."""
        return self.output_cap * self.choices

    @property
    def worst_case_nano(self) -> int:
        return hold_nano(self.prompt, self.output_tokens, self.prices)


CandidateFor = Callable[[ModelConfig], Candidate]


def candidate_builder(
    adapters: Mapping[str, ChatProvider],
    credentials: Callable[[Provider], tuple[str, str]],
    snapshot: Snapshot,
    body: Mapping[str, Any],
    prompt_of: Callable[[ModelConfig], int],
    max_tokens: int | None,
    user: User,
    choices: int = 1,
) -> CandidateFor:
    """Makes a request's Candidate for any model, counting the prompt once per
    tokenizer; raises the GatewayError that keeps a model from serving it."""
    tier = snapshot.tiers.get(user.tier_id)
    prompts: dict[str, int] = {}

    def candidate(m: ModelConfig) -> Candidate:
        if m.tokenizer not in prompts:
            prompts[m.tokenizer] = prompt_of(m)
        made = _candidate(
            adapters, credentials, snapshot, m, body, prompts[m.tokenizer], max_tokens, tier
        )
        return replace(made, choices=choices) if choices != 1 else made

    return candidate


def build_chain(snapshot: Snapshot, model: ModelConfig, candidate: CandidateFor) -> list[Candidate]:
    """The requested model (its problems are the request's errors), then its
    fallbacks that can serve it, ordered by provider and model priority."""
    chain = [candidate(model)]
    if not model.fallbacks:
        return chain
    ranked = []
    for position, model_id in enumerate(model.fallbacks):
        fallback = snapshot.models.get(model_id)
        if fallback is None or not fallback.is_active or fallback.model_id == model.model_id:
            continue
        if fallback.mode != model.mode:
            continue
        try:
            option = candidate(fallback)
        except GatewayError:
            continue  # cannot serve this request (no credentials, too small a window, ...)
        rank = (option.provider.fallback_priority, fallback.fallback_priority, position)
        ranked.append((rank, option))
    return chain + [option for _, option in sorted(ranked, key=lambda pair: pair[0])]


def _candidate(
    adapters: Mapping[str, ChatProvider],
    credentials: Callable[[Provider], tuple[str, str]],
    snapshot: Snapshot,
    model: ModelConfig,
    body: Mapping[str, Any],
    prompt: int,
    max_tokens: int | None,
    tier: PricingTier | None,
) -> Candidate:
    provider = snapshot.providers.get(model.provider)
    adapter = adapters.get(provider.kind) if provider else None
    if provider is None or adapter is None:
        raise unavailable(
            f"The model '{model.model_id}' is served by '{model.provider}', "
            "which this gateway cannot reach.",
            code="provider_unavailable",
        )
    if not provider.enabled:
        raise unavailable(f"The provider '{provider.id}' is disabled.", code="provider_unavailable")
    window = model.context_window_size
    if prompt + (max_tokens or 0) > window:
        raise bad_request(
            f"This model's maximum context length is {window} tokens. However, you requested "
            f"about {prompt + (max_tokens or 0)} tokens ({prompt} in the messages, "
            f"{max_tokens or 0} in the completion). Please reduce the length of the messages "
            "or completion.",
            param="messages",
            code="context_length_exceeded",
        )
    output_cap = (
        max_tokens if max_tokens is not None else min(model.max_output_tokens, window - prompt)
    )
    base_url, api_key = ("", "") if provider.kind == "mock" else credentials(provider)
    now = datetime.now(UTC)
    point = snapshot.price_point(model, now)
    model = snapshot.priced(model, now)  # the prices in force as the request starts
    call = ChatCall(body, model, provider, base_url, api_key, max_tokens)
    prices = prices_for(model, tier, point)
    return Candidate(model, provider, adapter, call, prices, prompt, output_cap)
