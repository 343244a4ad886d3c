"""A model's score for a classified request, term by term. Pure.

    total = category score x complexity multiplier
            + stickiness bonus (the model served this conversation before)
            + reasoning bonus (a reasoning model on a reasoning task)
            + research bonus (a research-capable model on a research task)
            - cost penalty of the model's cost tier x the preset's weight

The complexity multiplier is the config's `simple` or `medium` one, and its
`complex` one only for models whose quality reaches `complex_min_quality`
(others keep 1). The cost tier comes from the blended list price per million
tokens: (input x input weight + output x output weight) / (sum of weights).
Ranking: highest total, then the faster speed tier, then the cheaper blend,
then the model id, so that equal scores always rank the same way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from config_store.router_config import ModelProfile, RouterConfig
from config_store.schema import ModelConfig
from gateway.autoroute.classifier import Classification

_SPEED_ORDER = {"fast": 0, "medium": 1, "slow": 2}


@dataclass(frozen=True, slots=True)
class Score:
    model_id: str
    provider: str
    category_score: int
    multiplier: Decimal
    stickiness: Decimal
    reasoning: Decimal
    research: Decimal
    blended_price: Decimal
    cost_tier: str
    cost_penalty: Decimal  # the tier's penalty times the preset's weight
    speed_tier: str

    @property
    def base(self) -> Decimal:
        return self.category_score * self.multiplier

    @property
    def total(self) -> Decimal:
        return self.base + self.stickiness + self.reasoning + self.research - self.cost_penalty

    def rank_key(self) -> tuple[Decimal, int, Decimal, str]:
        return (
            -self.total,
            _SPEED_ORDER.get(self.speed_tier, 1),
            self.blended_price,
            self.model_id,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "provider": self.provider,
            "category_score": self.category_score,
            "complexity_multiplier": _num(self.multiplier),
            "base": _num(self.base),
            "stickiness_bonus": _num(self.stickiness),
            "reasoning_bonus": _num(self.reasoning),
            "research_bonus": _num(self.research),
            "blended_price_per_million": f"{self.blended_price:.6f}",
            "cost_tier": self.cost_tier,
            "cost_penalty": _num(self.cost_penalty),
            "speed_tier": self.speed_tier,
            "total": _num(self.total),
        }


def _num(value: Decimal) -> int | float:
    """For display: an integral Decimal as an int, else its nearest float."""
    return int(value) if value == value.to_integral_value() else float(value)


def blended_price(model: ModelConfig, config: RouterConfig) -> Decimal:
    return _blend(
        model.input_price_per_million,
        model.output_price_per_million,
        config.blend_input_weight,
        config.blend_output_weight,
    )


@functools.lru_cache(maxsize=4096)
def _blend(inp: Decimal, out: Decimal, input_weight: Decimal, output_weight: Decimal) -> Decimal:
    """Few distinct prices and weights, so computed once each."""
    return (inp * input_weight + out * output_weight) / (input_weight + output_weight)


def cost_tier(blended: Decimal, config: RouterConfig) -> str:
    if blended < config.cheap_below:
        return "cheap"
    if blended < config.mid_below:
        return "mid"
    return "premium"


def score(
    model: ModelConfig,
    profile: ModelProfile,
    classification: Classification,
    config: RouterConfig,
    preset: str,
    *,
    sticky: bool,
) -> Score:
    complexity = classification.complexity
    multiplier = config.multiplier(complexity)
    if complexity == "complex" and profile.quality < config.complex_min_quality:
        multiplier = Decimal(1)
    zero = Decimal(0)
    category = classification.category
    blended = blended_price(model, config)
    tier = cost_tier(blended, config)
    return Score(
        model_id=model.model_id,
        provider=model.provider,
        category_score=profile.score(category),
        multiplier=multiplier,
        stickiness=config.bonus_stickiness if sticky else zero,
        reasoning=(
            config.bonus_reasoning if category == "reasoning" and profile.can("reasoning") else zero
        ),
        research=(
            config.bonus_research if category == "research" and profile.can("research") else zero
        ),
        blended_price=blended,
        cost_tier=tier,
        cost_penalty=config.penalty(tier) * config.weight(preset),
        speed_tier=profile.speed_tier,
    )
