"""The auto-router's knobs (`RouterConfig`, a singleton) and the per-model
`ModelProfile`s it scores with, with their JSON forms and validation.

Every number the router uses is here. Knobs are JSON numbers on the wire and
in the store; the router does its arithmetic on them as `Decimal`, converted
from their shortest decimal text, so 0.7 is exactly 0.7. A JSON document is
validated in full before anything is built from it: unknown fields, wrong
types and out-of-range values raise `ConfigInvalid` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any

CATEGORIES = (
    "coding",
    "reasoning",
    "creative",
    "factual",
    "analysis",
    "conversation",
    "multimodal",
    "research",
)
COMPLEXITIES = ("simple", "medium", "complex")
PRESETS = ("cheap", "balanced", "best")
SPEED_TIERS = ("fast", "medium", "slow")
CAPABILITIES = ("vision", "tools", "json_mode", "reasoning", "research")


class ConfigInvalid(ValueError):
    """A router config or profile document that cannot be used; `param` names the field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class _Knob:
    path: str  # dotted path in the JSON document
    attr: str  # RouterConfig attribute
    kind: type  # Decimal, int or str
    low: Decimal | None = None
    high: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """The singleton of router knobs; the defaults are the values the router
    started from (the README's "Auto-router" section lists them)."""

    multiplier_simple: Decimal = Decimal("0.7")
    multiplier_medium: Decimal = Decimal("1")
    multiplier_complex: Decimal = Decimal("1.2")
    complex_min_quality: int = 85  # the complex multiplier applies from this quality up
    bonus_stickiness: Decimal = Decimal("25")
    bonus_reasoning: Decimal = Decimal("15")
    bonus_research: Decimal = Decimal("25")
    # Cost tiers by blended USD per 1M tokens: cheap < cheap_below <= mid < mid_below <= premium.
    cheap_below: Decimal = Decimal("1")
    mid_below: Decimal = Decimal("5")
    blend_input_weight: Decimal = Decimal("3")  # blended = (3 x input + 1 x output) / 4
    blend_output_weight: Decimal = Decimal("1")
    penalty_cheap: Decimal = Decimal("0")
    penalty_mid: Decimal = Decimal("10")
    penalty_premium: Decimal = Decimal("25")
    # How much the cost penalty counts under each preset.
    weight_cheap: Decimal = Decimal("2")
    weight_balanced: Decimal = Decimal("1")
    weight_best: Decimal = Decimal("0")
    chain_length: int = 3  # the ranked candidates kept as the fallback chain
    sticky_conversations: int = 10_000  # conversations remembered (LRU)
    classifier_model: str = ""  # a model asked to classify; empty: the local classifier
    classifier_timeout_ms: int = 300
    simple_max_tokens: int = 60  # prompts up to this many tokens (about 4 chars each) are simple
    complex_min_tokens: int = 800  # and from this many on, complex

    def multiplier(self, complexity: str) -> Decimal:
        value: Decimal = getattr(self, f"multiplier_{complexity}")
        return value

    def penalty(self, tier: str) -> Decimal:
        value: Decimal = getattr(self, f"penalty_{tier}")
        return value

    def weight(self, preset: str) -> Decimal:
        value: Decimal = getattr(self, f"weight_{preset}")
        return value

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for knob in _KNOBS:
            section, _, name = knob.path.rpartition(".")
            target = document.setdefault(section, {}) if section else document
            target[name] = _number_out(getattr(self, knob.attr))
        return document

    @classmethod
    def from_json(cls, document: Any) -> RouterConfig:
        """A whole document; fields it leaves out keep their defaults."""
        return cls.merged(cls(), document)

    @classmethod
    def merged(cls, base: RouterConfig, patch: Any) -> RouterConfig:
        """`base` with the fields named in `patch` (a partial document) replaced."""
        values: dict[str, Any] = {}
        _walk(patch, "", values)
        config = replace(base, **values)
        _check(config)
        return config


_HUNDRED = Decimal(100)
_ZERO = Decimal(0)
_KNOBS: tuple[_Knob, ...] = (
    _Knob("complexity_multipliers.simple", "multiplier_simple", Decimal, _ZERO, Decimal(10)),
    _Knob("complexity_multipliers.medium", "multiplier_medium", Decimal, _ZERO, Decimal(10)),
    _Knob("complexity_multipliers.complex", "multiplier_complex", Decimal, _ZERO, Decimal(10)),
    _Knob("complex_min_quality", "complex_min_quality", int, _ZERO, _HUNDRED),
    _Knob("bonuses.stickiness", "bonus_stickiness", Decimal, -_HUNDRED, _HUNDRED),
    _Knob("bonuses.reasoning", "bonus_reasoning", Decimal, -_HUNDRED, _HUNDRED),
    _Knob("bonuses.research", "bonus_research", Decimal, -_HUNDRED, _HUNDRED),
    _Knob("cost_tiers.cheap_below", "cheap_below", Decimal, _ZERO, Decimal(10_000)),
    _Knob("cost_tiers.mid_below", "mid_below", Decimal, _ZERO, Decimal(10_000)),
    _Knob("cost_tiers.blend_input_weight", "blend_input_weight", Decimal, _ZERO, _HUNDRED),
    _Knob("cost_tiers.blend_output_weight", "blend_output_weight", Decimal, _ZERO, _HUNDRED),
    _Knob("cost_penalties.cheap", "penalty_cheap", Decimal, -_HUNDRED, _HUNDRED),
    _Knob("cost_penalties.mid", "penalty_mid", Decimal, -_HUNDRED, _HUNDRED),
    _Knob("cost_penalties.premium", "penalty_premium", Decimal, -_HUNDRED, _HUNDRED),
    _Knob("preset_cost_weights.cheap", "weight_cheap", Decimal, _ZERO, _HUNDRED),
    _Knob("preset_cost_weights.balanced", "weight_balanced", Decimal, _ZERO, _HUNDRED),
    _Knob("preset_cost_weights.best", "weight_best", Decimal, _ZERO, _HUNDRED),
    _Knob("chain_length", "chain_length", int, Decimal(1), Decimal(10)),
    _Knob("sticky_conversations", "sticky_conversations", int, _ZERO, Decimal(10_000_000)),
    _Knob("classifier.model", "classifier_model", str),
    _Knob("classifier.timeout_ms", "classifier_timeout_ms", int, Decimal(1), Decimal(60_000)),
    _Knob("classifier.simple_max_tokens", "simple_max_tokens", int, _ZERO, Decimal(10**7)),
    _Knob("classifier.complex_min_tokens", "complex_min_tokens", int, _ZERO, Decimal(10**7)),
)
_BY_PATH = {knob.path: knob for knob in _KNOBS}
_SECTIONS = {knob.path.rpartition(".")[0] for knob in _KNOBS} - {""}
assert {k.attr for k in _KNOBS} == {f.name for f in fields(RouterConfig)}


def knob_ranges() -> list[dict[str, Any]]:
    """Every knob with its kind, valid range and default: what an editor needs."""
    defaults = RouterConfig()
    kinds = {Decimal: "number", int: "integer", str: "string"}
    return [
        {
            "path": knob.path,
            "kind": kinds[knob.kind],
            "min": None if knob.low is None else _number_out(knob.low),
            "max": None if knob.high is None else _number_out(knob.high),
            "default": _number_out(getattr(defaults, knob.attr)),
        }
        for knob in _KNOBS
    ]


def _walk(node: Any, prefix: str, out: dict[str, Any]) -> None:
    if not isinstance(node, Mapping):
        raise ConfigInvalid(f"'{prefix or 'config'}' must be an object.", prefix or "config")
    for name, value in node.items():
        path = f"{prefix}.{name}" if prefix else str(name)
        if path in _SECTIONS:
            _walk(value, path, out)
            continue
        knob = _BY_PATH.get(path)
        if knob is None:
            raise ConfigInvalid(f"Unknown router config field '{path}'.", path)
        out[knob.attr] = _value(value, knob.kind, path, knob.low, knob.high)


def _check(config: RouterConfig) -> None:
    if config.cheap_below > config.mid_below:
        raise ConfigInvalid(
            "'cost_tiers.cheap_below' must not be above 'cost_tiers.mid_below'.",
            "cost_tiers.cheap_below",
        )
    if config.blend_input_weight + config.blend_output_weight == 0:
        raise ConfigInvalid("The blend weights cannot both be 0.", "cost_tiers.blend_input_weight")
    if config.simple_max_tokens > config.complex_min_tokens:
        raise ConfigInvalid(
            "'classifier.simple_max_tokens' must not be above 'classifier.complex_min_tokens'.",
            "classifier.simple_max_tokens",
        )


def _value(raw: Any, kind: type, path: str, low: Decimal | None, high: Decimal | None) -> Any:
    if kind is str:
        if not isinstance(raw, str):
            raise ConfigInvalid(f"'{path}' must be a string.", path)
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        raise ConfigInvalid(f"'{path}' must be a number.", path)
    try:
        number = raw if isinstance(raw, Decimal) else Decimal(str(raw))
    except InvalidOperation:
        raise ConfigInvalid(f"'{path}' must be a finite number.", path) from None
    if not number.is_finite():
        raise ConfigInvalid(f"'{path}' must be a finite number.", path)
    if kind is int and number != number.to_integral_value():
        raise ConfigInvalid(f"'{path}' must be an integer.", path)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ConfigInvalid(f"'{path}' must be between {low} and {high}.", path)
    return int(number) if kind is int else number


def _number_out(value: Any) -> Any:
    """A Decimal knob as a JSON number (its shortest text, so 0.7 stays 0.7)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """How good a model is at each category, how fast, and what it can do."""

    model_id: str
    quality: int  # 0-100 overall
    speed_tier: str  # fast | medium | slow
    scores: Mapping[str, int]  # every category, 0-100
    capabilities: frozenset[str] = frozenset()  # of CAPABILITIES

    def score(self, category: str) -> int:
        return self.scores.get(category, 0)

    def can(self, capability: str) -> bool:
        return capability in self.capabilities

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "quality": self.quality,
            "speed_tier": self.speed_tier,
            "scores": {category: self.scores[category] for category in CATEGORIES},
            "capabilities": {name: name in self.capabilities for name in CAPABILITIES},
        }

    @classmethod
    def from_json(cls, model_id: str, document: Any) -> ModelProfile:
        """A whole profile: every category score is required; capabilities left out are false."""
        if not isinstance(document, Mapping):
            raise ConfigInvalid("A profile must be a JSON object.", "profile")
        unknown = set(document) - {"model_id", "quality", "speed_tier", "scores", "capabilities"}
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigInvalid(f"Unknown profile field '{name}'.", name)
        if document.get("model_id", model_id) != model_id:
            raise ConfigInvalid("'model_id' does not match the profile's path.", "model_id")
        quality = _value(document.get("quality"), int, "quality", _ZERO, _HUNDRED)
        speed = document.get("speed_tier")
        if speed not in SPEED_TIERS:
            raise ConfigInvalid(
                f"'speed_tier' must be one of {', '.join(SPEED_TIERS)}.", "speed_tier"
            )
        scores = document.get("scores")
        if not isinstance(scores, Mapping):
            raise ConfigInvalid("'scores' must be an object with a score per category.", "scores")
        for name in scores:
            if name not in CATEGORIES:
                raise ConfigInvalid(f"Unknown category '{name}'.", f"scores.{name}")
        parsed = {
            category: _value(scores.get(category), int, f"scores.{category}", _ZERO, _HUNDRED)
            for category in CATEGORIES
        }
        raw_caps = document.get("capabilities", {})
        if not isinstance(raw_caps, Mapping):
            raise ConfigInvalid("'capabilities' must be an object of booleans.", "capabilities")
        capabilities = set()
        for name, enabled in raw_caps.items():
            if name not in CAPABILITIES:
                raise ConfigInvalid(f"Unknown capability '{name}'.", f"capabilities.{name}")
            if not isinstance(enabled, bool):
                raise ConfigInvalid(
                    f"'capabilities.{name}' must be a boolean.", f"capabilities.{name}"
                )
            if enabled:
                capabilities.add(name)
        return cls(model_id, quality, speed, parsed, frozenset(capabilities))

    def merged(self, patch: Any) -> ModelProfile:
        """This profile with the fields named in `patch` replaced (scores and
        capabilities merge key by key)."""
        if not isinstance(patch, Mapping):
            raise ConfigInvalid("A profile must be a JSON object.", "profile")
        document = self.to_json()
        for name, value in patch.items():
            if name in ("scores", "capabilities") and isinstance(value, Mapping):
                document[name] = {**document[name], **value}
            else:
                document[name] = value
        return ModelProfile.from_json(self.model_id, document)
