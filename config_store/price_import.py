"""Price files in, per-million prices matched to our models out. Pure: no I/O.

Formats (`detect` picks one when none is named):

    export       our own `GET /admin/models/export`: {"models": [{model_id, *_price_per_million}]}
    per_1m       {"<model>": {"input": .., "output": .., "cached_input": .., "cache_write": ..}}
                 (or one level deeper, per gateway: {"<gateway>": {"<model>": {...}}},
                 whose rows are named "<gateway>/<model>"), USD per million tokens
    per_1k       the same shape, USD per thousand tokens
    litellm      LiteLLM's model_prices_and_context_window.json: per-token
                 input_cost_per_token, output_cost_per_token, cache_read_input_token_cost,
                 cache_creation_input_token_cost, max_input_tokens, max_output_tokens,
                 litellm_provider, mode
    openrouter   OpenRouter's models list: {"data": [{"id", "pricing": {"prompt",
                 "completion", "input_cache_read", "input_cache_write"}}]}, per token

Every value is read as `Decimal` from its text ("1.25e-6" stays exact) and
scaled exactly to USD per million tokens. A row is matched to our models by
model id, by upstream name, or as "<provider>/<name>" when the prefix names
the model's provider; a row that matches nothing is listed, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from config_store.schema import ModelConfig, Provider

FORMATS = ("export", "per_1m", "per_1k", "litellm", "openrouter")
_MILLION = Decimal(1_000_000)
_SCALE = {"export": Decimal(1), "per_1m": Decimal(1), "per_1k": Decimal(1000)}
# Names a price file may use for a provider, by our provider kind.
_ALIASES = {
    "openai": {"openai", "azure", "text-completion-openai"},
    "anthropic": {"anthropic", "claude"},
    "gemini": {"google", "gemini", "vertex_ai", "google-vertex", "vertex_ai-language-models"},
    "mock": {"mock"},
}
_PRICE_NAMES = ("input", "output", "cached_input", "cache_write")


class PriceFileError(ValueError):
    """The file is not a price file of the format; `rows` says which rows and why."""

    def __init__(self, message: str, rows: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.rows = rows or []


@dataclass(frozen=True, slots=True)
class PriceRow:
    number: int  # 1-based, in the file's order
    name: str
    input: Decimal | None
    output: Decimal | None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    provider_hint: str = ""  # e.g. LiteLLM's litellm_provider


@dataclass(slots=True)
class Report:
    format: str
    dry_run: bool
    rows_read: int = 0
    matched: int = 0
    inserted: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "dry_run": self.dry_run,
            "rows_read": self.rows_read,
            "matched": self.matched,
            "inserted": self.inserted,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "coverage": self.coverage,
        }


def per_million(value: Any, scale: Decimal, where: str) -> Decimal | None:
    """A price as exact USD per million tokens; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{where} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{where} is not a number: {str(value)[:30]!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{where} must be a finite, non-negative number")
    return canonical(number * scale)


def canonical(value: Decimal) -> Decimal:
    """Without exponent or trailing zeros: 1.250000 -> 1.25, 2.5E+1 -> 25."""
    text = format(value.normalize(), "f")
    return Decimal(text)


def detect(document: Any) -> str:
    if isinstance(document, Mapping) and isinstance(document.get("models"), list):
        return "export"
    if isinstance(document, Mapping) and isinstance(document.get("data"), list):
        return "openrouter"
    if isinstance(document, Mapping):
        for value in document.values():
            if isinstance(value, Mapping) and (
                "input_cost_per_token" in value or "output_cost_per_token" in value
            ):
                return "litellm"
        return "per_1m"
    raise PriceFileError("The file is not a price file: expected a JSON object.")


def parse(document: Any, fmt: str) -> tuple[list[PriceRow], list[tuple[int, str]]]:
    """The file's rows, and its malformed rows (number, reason)."""
    if fmt not in FORMATS:
        raise PriceFileError(f"Unknown format '{fmt}'; one of {', '.join(FORMATS)}.")
    entries = list(_entries(document, fmt))
    rows: list[PriceRow] = []
    bad: list[tuple[int, str]] = []
    for number, (name, raw) in enumerate(entries, start=1):
        try:
            rows.append(_row(number, name, raw, fmt))
        except ValueError as exc:
            bad.append((number, f"{name or '?'}: {exc}"))
    return rows, bad


def _entries(document: Any, fmt: str) -> Iterable[tuple[str, Any]]:
    if fmt == "export":
        models = document.get("models") if isinstance(document, Mapping) else None
        if not isinstance(models, list):
            raise PriceFileError('An export file is {"models": [...]}.')
        for item in models:
            name = item.get("model_id") if isinstance(item, Mapping) else None
            yield (name if isinstance(name, str) else "", item)
    elif fmt == "openrouter":
        data = document.get("data") if isinstance(document, Mapping) else None
        if not isinstance(data, list):
            raise PriceFileError('An OpenRouter file is {"data": [...]}.')
        for item in data:
            name = item.get("id") if isinstance(item, Mapping) else None
            yield (name if isinstance(name, str) else "", item)
    else:
        if not isinstance(document, Mapping):
            raise PriceFileError("This format is a JSON object of models.")
        for name, item in document.items():
            if fmt == "litellm" and name == "sample_spec":
                continue  # LiteLLM's documentation entry
            if fmt in ("per_1m", "per_1k") and _is_gateway(item):
                for inner, value in item.items():
                    yield (f"{name}/{inner}", value)
            else:
                yield (str(name), item)


def _is_gateway(item: Any) -> bool:
    """A per-gateway group: an object whose values are all model objects."""
    return (
        isinstance(item, Mapping)
        and bool(item)
        and all(isinstance(v, Mapping) for v in item.values())
        and not any(key in item for key in (*_PRICE_NAMES, "prompt", "completion"))
    )


def _row(number: int, name: str, raw: Any, fmt: str) -> PriceRow:
    if not name:
        raise ValueError("the row has no model name")
    if not isinstance(raw, Mapping):
        raise ValueError("the row is not an object")
    if fmt == "export":
        scale, names = (
            _SCALE[fmt],
            {
                "input": "input_price_per_million",
                "output": "output_price_per_million",
                "cached_input": "cached_input_price_per_million",
                "cache_write": "cache_write_price_per_million",
            },
        )
        values, hint = raw, str(raw.get("provider") or "")
    elif fmt == "litellm":
        scale, names = (
            _MILLION,
            {
                "input": "input_cost_per_token",
                "output": "output_cost_per_token",
                "cached_input": "cache_read_input_token_cost",
                "cache_write": "cache_creation_input_token_cost",
            },
        )
        values, hint = raw, str(raw.get("litellm_provider") or "")
    elif fmt == "openrouter":
        pricing = raw.get("pricing")
        if not isinstance(pricing, Mapping):
            raise ValueError("'pricing' is missing")
        scale, names = (
            _MILLION,
            {
                "input": "prompt",
                "output": "completion",
                "cached_input": "input_cache_read",
                "cache_write": "input_cache_write",
            },
        )
        values, hint = pricing, ""
    else:
        scale = _SCALE[fmt]
        names = {k: k for k in _PRICE_NAMES}
        if "input" not in raw and "prompt" in raw:
            names = {**names, "input": "prompt", "output": "completion"}
        values, hint = raw, ""
    prices = {
        ours: per_million(values.get(theirs), scale, f"'{theirs}'")
        for ours, theirs in names.items()
    }
    if prices["input"] is None and prices["output"] is None:
        raise ValueError("no input or output price")
    return PriceRow(number, name, provider_hint=hint, **prices)


def match(
    row: PriceRow, models: Iterable[ModelConfig], providers: Mapping[str, Provider]
) -> list[ModelConfig]:
    """Our models this row prices: by id, by upstream name, or "<provider>/<name>"."""
    models = list(models)
    exact = [m for m in models if m.model_id == row.name]
    if exact:
        return exact
    by_upstream = [m for m in models if m.upstream_model and m.upstream_model == row.name]
    if by_upstream:
        return by_upstream
    prefix, _, rest = row.name.partition("/")
    if not rest:
        return []

    def names_provider(model: ModelConfig) -> bool:
        provider = providers.get(model.provider)
        known = {model.provider}
        if provider is not None:
            known |= {provider.id, provider.kind} | _ALIASES.get(provider.kind, set())
        return prefix in known

    return [
        m for m in models if (m.model_id == rest or m.upstream_name == rest) and names_provider(m)
    ]


def new_prices(row: PriceRow, model: ModelConfig) -> dict[str, Decimal | None]:
    """The model's prices after this row: what the row leaves out stays as it is."""
    return {
        "input_price_per_million": _or(row.input, model.input_price_per_million),
        "output_price_per_million": _or(row.output, model.output_price_per_million),
        "cached_input_price_per_million": _or(
            row.cached_input, model.cached_input_price_per_million
        ),
        "cache_write_price_per_million": _or(row.cache_write, model.cache_write_price_per_million),
    }


def _or(new: Decimal | None, old: Decimal | None) -> Decimal | None:
    return new if new is not None else old


def is_priced(model: ModelConfig) -> bool:
    return not model.needs_price and (
        model.input_price_per_million > 0 or model.output_price_per_million > 0
    )
