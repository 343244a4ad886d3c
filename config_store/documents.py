"""JSON documents of the config entities (providers, models, tiers, price points):
how they are shown, stored in the history, imported and exported, and how an
admin's document is validated before anything is built from it.

Prices travel as decimal strings ("0.0375"); a JSON number is accepted on
input and read through its shortest text, never as a binary float. A document
with an unknown field, a wrong type or an out-of-range value raises
`ConfigInvalid` naming the field; nothing partial is ever returned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from config_store.router_config import ConfigInvalid
from config_store.schema import EPOCH, ModelConfig, PricePoint, PricingTier, Provider, iso

PROVIDER_KINDS = ("openai", "anthropic", "gemini", "mock")
TOKENIZERS = ("o200k_base", "cl100k_base", "approx")
MODES = ("chat", "embedding", "completion")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
MAX_PRICE = Decimal(1_000_000)  # USD per million tokens: far above any real price


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# -- reading fields ---------------------------------------------------------------------------


class Fields:
    """Typed reads of one JSON object's fields, each failure naming its field."""

    def __init__(self, document: Any, allowed: set[str], what: str) -> None:
        if not isinstance(document, Mapping):
            raise ConfigInvalid(f"A {what} must be a JSON object.", what)
        unknown = sorted(set(document) - allowed)
        if unknown:
            raise ConfigInvalid(f"Unknown {what} field '{unknown[0]}'.", unknown[0])
        self.document = document

    def has(self, name: str) -> bool:
        return name in self.document

    def text(self, name: str, default: str | None = None, *, pattern: re.Pattern[str] | None = None,
             allow_empty: bool = False, choices: tuple[str, ...] = (), limit: int = 2000
             ) -> str:  # fmt: skip
        """A string; with a `pattern`, the whole of it must match (an id is never
        empty), unless `allow_empty` lets "" stand for "not set"."""
        value = self.document.get(name, default)
        if value is None:
            raise ConfigInvalid(f"'{name}' is required.", name)
        if not isinstance(value, str):
            raise ConfigInvalid(f"'{name}' must be a string.", name)
        if choices and value not in choices:
            raise ConfigInvalid(f"'{name}' must be one of {', '.join(choices)}.", name)
        if pattern is not None and not (allow_empty and value == ""):
            if not value:
                raise ConfigInvalid(f"'{name}' must not be empty.", name)
            if not pattern.fullmatch(value):
                raise ConfigInvalid(
                    f"'{name}' has characters or a length that are not allowed.", name
                )
        if len(value) > limit:
            raise ConfigInvalid(f"'{name}' is longer than {limit} characters.", name)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.document.get(name, default)
        if not isinstance(value, bool):
            raise ConfigInvalid(f"'{name}' must be a boolean.", name)
        return value

    def integer(self, name: str, default: int | None, low: int = 0, high: int = 2**53) -> int:
        value = self.document.get(name, default)
        if value is None:
            raise ConfigInvalid(f"'{name}' is required.", name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigInvalid(f"'{name}' must be an integer.", name)
        if not low <= value <= high:
            raise ConfigInvalid(f"'{name}' must be between {low} and {high}.", name)
        return value

    def number(self, name: str, default: float, low: float = 0, high: float = 86_400) -> float:
        """A duration or similar measure (not money)."""
        value = self.document.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigInvalid(f"'{name}' must be a number.", name)
        if not low <= value <= high:
            raise ConfigInvalid(f"'{name}' must be between {low} and {high}.", name)
        return float(value)

    def decimal(self, name: str, *, required: bool, high: Decimal = MAX_PRICE) -> Decimal | None:
        value = self.document.get(name)
        if value is None:
            if required:
                raise ConfigInvalid(f"'{name}' is required.", name)
            return None
        return parse_decimal(value, name, high=high)

    def moment(self, name: str, default: datetime) -> datetime:
        value = self.document.get(name)
        if value is None:
            return default
        return parse_moment(value, name)

    def names(self, name: str) -> tuple[str, ...]:
        value = self.document.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigInvalid(f"'{name}' must be an array of non-empty strings.", name)
        return tuple(value)


def parse_decimal(value: Any, name: str, *, high: Decimal = MAX_PRICE) -> Decimal:
    """A non-negative decimal from a string ("0.0375", "1.25e-6") or a JSON number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ConfigInvalid(f"'{name}' must be a decimal string or a number.", name)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigInvalid(f"'{name}' is not a number: {str(value)[:40]!r}.", name) from None
    if not number.is_finite():
        raise ConfigInvalid(f"'{name}' must be a finite number.", name)
    if number < 0:
        raise ConfigInvalid(f"'{name}' must not be negative.", name)
    if number > high:
        raise ConfigInvalid(f"'{name}' must be at most {high}.", name)
    return number


def parse_moment(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ConfigInvalid(f"'{name}' must be an ISO 8601 date-time string.", name)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigInvalid(
            f"'{name}' is not an ISO 8601 date-time: {value[:40]!r}.", name
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- providers --------------------------------------------------------------------------------

_PROVIDER_FIELDS = {
    "id", "kind", "base_url", "api_key_env", "base_url_env", "api_key", "enabled",
    "display_name", "rpm", "tpm", "fallback_priority", "connect_timeout", "read_timeout",
    "total_timeout",
}  # fmt: skip


def provider_to_json(provider: Provider) -> dict[str, Any]:
    """The stored form (the history keeps it, key ciphertext included); `api_key`
    never leaves the gateway: see `provider_view`."""
    return {
        "id": provider.id,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "api_key_env": provider.api_key_env,
        "base_url_env": provider.base_url_env,
        "api_key": provider.api_key,
        "enabled": provider.enabled,
        "display_name": provider.display_name,
        "rpm": provider.rpm,
        "tpm": provider.tpm,
        "fallback_priority": provider.fallback_priority,
        "connect_timeout": provider.connect_timeout,
        "read_timeout": provider.read_timeout,
        "total_timeout": provider.total_timeout,
    }


def provider_from_json(document: Any, *, id: str | None = None) -> Provider:
    f = Fields(document, _PROVIDER_FIELDS, "provider")
    provider_id = f.text("id", id, pattern=_NAME)
    if id is not None and provider_id != id:
        raise ConfigInvalid("'id' does not match the path.", "id")
    return Provider(
        id=provider_id,
        kind=f.text("kind", None, choices=PROVIDER_KINDS),
        base_url=f.text("base_url", ""),
        api_key_env=f.text("api_key_env", "", pattern=_ENV, allow_empty=True),
        base_url_env=f.text("base_url_env", "", pattern=_ENV, allow_empty=True),
        api_key=f.text("api_key", "", limit=4000),
        enabled=f.boolean("enabled", True),
        display_name=f.text("display_name", "", limit=200),
        rpm=f.integer("rpm", 0),
        tpm=f.integer("tpm", 0),
        fallback_priority=f.integer("fallback_priority", 100, 0, 1_000_000),
        connect_timeout=f.number("connect_timeout", 0.0),
        read_timeout=f.number("read_timeout", 0.0),
        total_timeout=f.number("total_timeout", 0.0),
    )


# -- models -----------------------------------------------------------------------------------

_MODEL_FIELDS = {
    "id", "model_id", "provider", "input_price_per_million", "output_price_per_million",
    "cached_input_price_per_million", "cache_write_price_per_million", "context_window_size",
    "max_output_tokens", "is_active", "created_at", "upstream_model", "tokenizer", "note",
    "mode", "fallbacks", "fallback_priority", "needs_price", "deprecated_at",
}  # fmt: skip


def model_to_json(model: ModelConfig) -> dict[str, Any]:
    return {
        "id": model.id,
        "model_id": model.model_id,
        "provider": model.provider,
        "input_price_per_million": str(model.input_price_per_million),
        "output_price_per_million": str(model.output_price_per_million),
        "cached_input_price_per_million": _text(model.cached_input_price_per_million),
        "cache_write_price_per_million": _text(model.cache_write_price_per_million),
        "context_window_size": model.context_window_size,
        "max_output_tokens": model.max_output_tokens,
        "is_active": model.is_active,
        "created_at": iso(model.created_at),
        "upstream_model": model.upstream_model,
        "tokenizer": model.tokenizer,
        "note": model.note,
        "mode": model.mode,
        "fallbacks": list(model.fallbacks),
        "fallback_priority": model.fallback_priority,
        "needs_price": model.needs_price,
        "deprecated_at": None if model.deprecated_at is None else iso(model.deprecated_at),
    }


def model_from_json(document: Any, *, id: str, created_at: datetime) -> ModelConfig:
    """A whole model document; `id` and `created_at` are given for a new model
    (a document's own `id`, when present, must agree)."""
    f = Fields(document, _MODEL_FIELDS, "model")
    model_id = f.text("model_id", None, pattern=_NAME, limit=200)
    if model_id == "auto" or model_id.startswith("auto:"):
        raise ConfigInvalid("'auto' and 'auto:*' are the router's names.", "model_id")
    row_id = f.text("id", id, pattern=_NAME, limit=64)
    if row_id != id:
        raise ConfigInvalid("'id' cannot be changed.", "id")
    window = f.integer("context_window_size", None, 1, 100_000_000)
    max_output = f.integer("max_output_tokens", None, 0, 100_000_000)
    if max_output > window:
        raise ConfigInvalid(
            "'max_output_tokens' must not exceed 'context_window_size'.", "max_output_tokens"
        )
    fallbacks = f.names("fallbacks")
    if model_id in fallbacks:
        raise ConfigInvalid("A model cannot be its own fallback.", "fallbacks")
    return ModelConfig(
        id=row_id,
        model_id=model_id,
        provider=f.text("provider", None, pattern=_NAME),
        input_price_per_million=_required(f, "input_price_per_million"),
        output_price_per_million=_required(f, "output_price_per_million"),
        cached_input_price_per_million=f.decimal("cached_input_price_per_million", required=False),
        cache_write_price_per_million=f.decimal("cache_write_price_per_million", required=False),
        context_window_size=window,
        max_output_tokens=max_output,
        is_active=f.boolean("is_active", True),
        created_at=f.moment("created_at", created_at),
        upstream_model=f.text("upstream_model", "", limit=200),
        tokenizer=f.text("tokenizer", "o200k_base", choices=TOKENIZERS),
        note=f.text("note", "", limit=1000),
        mode=f.text("mode", "chat", choices=MODES),
        fallbacks=fallbacks,
        fallback_priority=f.integer("fallback_priority", 100, 0, 1_000_000),
        needs_price=f.boolean("needs_price", False),
        deprecated_at=(
            None if f.document.get("deprecated_at") is None else f.moment("deprecated_at", EPOCH)
        ),
    )


def _required(f: Fields, name: str) -> Decimal:
    value = f.decimal(name, required=True)
    assert value is not None
    return value


def merged(current: Mapping[str, Any], patch: Any, what: str) -> dict[str, Any]:
    """`current` with the fields named in `patch` replaced (a partial update)."""
    if not isinstance(patch, Mapping):
        raise ConfigInvalid(f"A {what} must be a JSON object.", what)
    return {**current, **patch}


# -- tiers ------------------------------------------------------------------------------------


def tier_to_json(tier: PricingTier) -> dict[str, Any]:
    return {"id": tier.id, "name": tier.name, "markup_percent": str(tier.markup_percent)}


def tier_from_json(document: Any, *, id: str | None = None) -> PricingTier:
    f = Fields(document, {"id", "name", "markup_percent"}, "tier")
    tier_id = f.text("id", id, pattern=_NAME, limit=100)
    if id is not None and tier_id != id:
        raise ConfigInvalid("'id' does not match the path.", "id")
    markup = f.decimal("markup_percent", required=True, high=Decimal(1000))
    assert markup is not None
    return PricingTier(tier_id, f.text("name", None, limit=200), markup)


# -- price points -----------------------------------------------------------------------------

_PRICE_FIELDS = {
    "effective_from", "input_price_per_million", "output_price_per_million",
    "cached_input_price_per_million", "cache_write_price_per_million", "reason",
}  # fmt: skip


def price_from_json(document: Any, model: ModelConfig, *, now: datetime, actor: str) -> PricePoint:
    """A new price point; prices it leaves out keep the model's current ones."""
    f = Fields(document, _PRICE_FIELDS, "price")
    if not any(f.has(name) for name in _PRICE_FIELDS - {"effective_from", "reason"}):
        raise ConfigInvalid("A price change names at least one price.", "input_price_per_million")

    def price(name: str, current: Decimal | None) -> Decimal | None:
        return f.decimal(name, required=False) if f.has(name) else current

    inp = price("input_price_per_million", model.input_price_per_million)
    out = price("output_price_per_million", model.output_price_per_million)
    if inp is None or out is None:
        raise ConfigInvalid("Input and output prices cannot be removed.", "input_price_per_million")
    return PricePoint(
        model_id=model.model_id,
        effective_from=f.moment("effective_from", now),
        input_price_per_million=inp,
        output_price_per_million=out,
        cached_input_price_per_million=price(
            "cached_input_price_per_million", model.cached_input_price_per_million
        ),
        cache_write_price_per_million=price(
            "cache_write_price_per_million", model.cache_write_price_per_million
        ),
        actor=actor,
        reason=f.text("reason", "", limit=500),
        recorded_at=now,
    )


PRICE_FIELDS = (
    "input_price_per_million",
    "output_price_per_million",
    "cached_input_price_per_million",
    "cache_write_price_per_million",
)


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def prices_of(document: Mapping[str, Any] | None) -> tuple[str | None, ...] | None:
    """A model document's four prices as comparable decimal texts (None: no document)."""
    if document is None:
        return None
    return tuple(_text(_decimal_or_none(document.get(name))) for name in PRICE_FIELDS)


SCHEDULE_ACTOR = "schedule"  # who wrote a scheduled price into its model, in the history


def point_prices(point: PricePoint) -> dict[str, str | None]:
    """A price point's four prices as a model document holds them."""
    return {
        "input_price_per_million": str(point.input_price_per_million),
        "output_price_per_million": str(point.output_price_per_million),
        "cached_input_price_per_million": _text(point.cached_input_price_per_million),
        "cache_write_price_per_million": _text(point.cache_write_price_per_million),
    }


def price_point_of(
    document: Mapping[str, Any], at: datetime, actor: str, reason: str
) -> PricePoint:
    """A model document's prices as a price point in force from `at`."""
    return PricePoint(
        model_id=str(document["model_id"]),
        effective_from=at,
        input_price_per_million=Decimal(str(document["input_price_per_million"])),
        output_price_per_million=Decimal(str(document["output_price_per_million"])),
        cached_input_price_per_million=_decimal_or_none(
            document.get("cached_input_price_per_million")
        ),
        cache_write_price_per_million=_decimal_or_none(
            document.get("cache_write_price_per_million")
        ),
        actor=actor,
        reason=reason,
        recorded_at=at,
    )
