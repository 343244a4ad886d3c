"""The demo catalogue: the providers, models and pricing tier the gateway seeds into a fresh
store and serves as built-in defaults.

Prices are published list prices in USD per million tokens, written as decimal strings.
Where a price or model is not published as-is, the assumption made is recorded in that
model's `note`; docs/catalogue.md lists them all.
"""

from __future__ import annotations

from decimal import Decimal

from config_store.schema import EPOCH, ModelConfig, PricingTier, Provider

DEMO_PROVIDERS: tuple[Provider, ...] = (
    Provider(
        id="openai",
        kind="openai",
        base_url="https://api.openai.com/v1",
        api_key_env="OPENAI_API_KEY",
        base_url_env="OPENAI_BASE_URL",
        display_name="OpenAI",
    ),
    Provider(
        id="anthropic",
        kind="anthropic",
        base_url="https://api.anthropic.com",
        api_key_env="ANTHROPIC_API_KEY",
        base_url_env="ANTHROPIC_BASE_URL",
        display_name="Anthropic",
    ),
    Provider(
        id="google",
        kind="gemini",
        base_url="https://generativelanguage.googleapis.com",
        api_key_env="GEMINI_API_KEY",
        base_url_env="GEMINI_BASE_URL",
        display_name="Google Gemini",
    ),
    Provider(id="mock", kind="mock", display_name="Mock (local, deterministic)"),
)

FREE_TIER = PricingTier(id="free", name="Free Tier", markup_percent=Decimal("10"))

_LIST = "list price"
_OA, _GG, _AN = "openai", "google", "anthropic"
# OpenAI's gpt-4o family and later (gpt-4.1, gpt-4.5, o-series, codex-mini) use o200k_base;
# Gemini and Claude tokenizers are not public, so their counts are approximate.
_TOKENIZER = {_OA: "o200k_base", _GG: "approx", _AN: "approx", "mock": "o200k_base"}


def _m(
    num: str,
    model_id: str,
    provider: str,
    ctx: int,
    max_out: int,
    inp: str,
    out: str,
    cached: str | None = None,
    write: str | None = None,
    note: str = _LIST,
    upstream: str = "",
    mode: str = "chat",
    tokenizer: str = "",
) -> ModelConfig:
    """One catalogue row; prices are decimal strings, USD per million tokens."""
    return ModelConfig(
        id=num,
        model_id=model_id,
        provider=provider,
        input_price_per_million=Decimal(inp),
        output_price_per_million=Decimal(out),
        context_window_size=ctx,
        max_output_tokens=max_out,
        created_at=EPOCH,
        upstream_model=upstream,
        tokenizer=tokenizer or _TOKENIZER[provider],
        cached_input_price_per_million=None if cached is None else Decimal(cached),
        cache_write_price_per_million=None if write is None else Decimal(write),
        note=note,
        mode=mode,
    )


_G200K = "list price, prompts <= 200k tokens tier"
_G128K = "list price, prompts <= 128k tokens tier"
_N_4O_0513 = "list price; no cached-input price published"
_N_O3 = "list price from June 2025 (was 10.00/40.00 before the cut)"
_N_FL_1B = "no public model: assumed priced as gemini-1.5-flash-8b, <= 128k tier"
_N_PRO_1M = "no public id: assumed alias of gemini-1.5-pro with 1M context, <= 128k tier"
_N_PRO_LATEST = "alias of gemini-1.5-pro; list price, prompts <= 128k tokens tier"
_N_FL_LATEST = "alias of gemini-1.5-flash; list price, prompts <= 128k tokens tier"
_N_OPUS_35 = "no such public model: assumed priced like Claude 3 Opus"
_N_SONNET = "alias of claude-3-5-sonnet-20241022; list price"
_N_HAIKU = "alias of claude-3-5-haiku-20241022; list price"
_N_MOCK = "local deterministic mock, priced like gpt-4o-mini"
_N_MOCK_EMBED = "local deterministic mock embeddings, priced like text-embedding-3-small"
_N_MOCK_INSTRUCT = "local deterministic mock completions, priced like gpt-3.5-turbo-instruct"

# Shared context sizes and price sets (input, output[, cached read, cache write]).
_GPT41_CTX = 1_047_576
_GEM_1M = 1_048_576
_GEM15_PRO = ("1.25", "5.00")
_GEM15_FLASH = ("0.075", "0.30")
_GEM15_FLASH_8B = ("0.0375", "0.15")
_GEM10_PRO = ("0.50", "1.50")
_SONNET_35 = ("3.00", "15.00", "0.30", "3.75")
_HAIKU_35 = ("0.80", "4.00", "0.08", "1.00")
_OPUS_3 = ("15.00", "75.00", "1.50", "18.75")

_EMBEDDING = {"mode": "embedding", "tokenizer": "cl100k_base"}
_COMPLETION = {"mode": "completion", "tokenizer": "cl100k_base"}
_MOCK_COMPLETION = {**_COMPLETION, "note": _N_MOCK_INSTRUCT}

# Columns: id, model_id, provider, context, max output, input, output, cached input (read),
# cache write; then an optional note. Prices are USD per million tokens.
DEMO_MODELS: tuple[ModelConfig, ...] = (
    # OpenAI: cached = the published cached-input price.
    _m("101", "gpt-4.1-2025-04-14", _OA, _GPT41_CTX, 32_768, "2.00", "8.00", "0.50"),
    _m("102", "gpt-4.1-mini-2025-04-14", _OA, _GPT41_CTX, 32_768, "0.40", "1.60", "0.10"),
    _m("103", "gpt-4.1-nano-2025-04-14", _OA, _GPT41_CTX, 32_768, "0.10", "0.40", "0.025"),
    _m("104", "gpt-4.5-preview-2025-02-27", _OA, 128_000, 16_384, "75.00", "150.00", "37.50"),
    _m("105", "gpt-4o-2024-08-06", _OA, 128_000, 16_384, "2.50", "10.00", "1.25"),
    _m("106", "gpt-4o-2024-11-20", _OA, 128_000, 16_384, "2.50", "10.00", "1.25"),
    _m("107", "gpt-4o-2024-05-13", _OA, 128_000, 4_096, "5.00", "15.00", note=_N_4O_0513),
    _m("108", "gpt-4o-mini-2024-07-18", _OA, 128_000, 16_384, "0.15", "0.60", "0.075"),
    _m("109", "o1-2024-12-17", _OA, 200_000, 100_000, "15.00", "60.00", "7.50"),
    _m("110", "o3-2025-04-16", _OA, 200_000, 100_000, "2.00", "8.00", "0.50", note=_N_O3),
    _m("111", "o3-mini-2025-01-31", _OA, 200_000, 100_000, "1.10", "4.40", "0.55"),
    _m("112", "o1-mini-2024-09-12", _OA, 128_000, 65_536, "1.10", "4.40", "0.55"),
    _m("113", "codex-mini-latest", _OA, 200_000, 100_000, "1.50", "6.00", "0.375"),
    # Google: cached = the published context-cache read price.
    _m("201", "gemini-2.5-pro", _GG, _GEM_1M, 65_536, "1.25", "10.00", "0.31", note=_G200K),
    _m("202", "gemini-2.5-flash", _GG, _GEM_1M, 65_536, "0.30", "2.50", "0.075"),
    _m("203", "gemini-2.5-flash-lite-preview-06-17", _GG, 10**6, 64_000, "0.10", "0.40", "0.025"),
    _m("204", "gemini-2.0-flash", _GG, _GEM_1M, 8_192, "0.10", "0.40", "0.025"),
    _m("205", "gemini-2.0-flash-lite", _GG, _GEM_1M, 8_192, "0.075", "0.30"),
    _m("206", "gemini-1.5-flash", _GG, _GEM_1M, 8_192, *_GEM15_FLASH, note=_G128K),
    _m("207", "gemini-1.5-flash-8b", _GG, _GEM_1M, 8_192, *_GEM15_FLASH_8B, note=_G128K),
    _m("208", "gemini-1.5-flash-1b", _GG, _GEM_1M, 8_192, *_GEM15_FLASH_8B, note=_N_FL_1B),
    _m("209", "gemini-1.5-pro", _GG, 2_097_152, 8_192, *_GEM15_PRO, note=_G128K),
    _m(
        "210",
        "gemini-1.5-pro-1m",
        _GG,
        _GEM_1M,
        8_192,
        *_GEM15_PRO,
        note=_N_PRO_1M,
        upstream="gemini-1.5-pro",
    ),
    _m("211", "gemini-1.5-pro-latest", _GG, 2_097_152, 8_192, *_GEM15_PRO, note=_N_PRO_LATEST),
    _m("212", "gemini-1.5-flash-latest", _GG, _GEM_1M, 8_192, *_GEM15_FLASH, note=_N_FL_LATEST),
    _m("213", "gemini-1.0-pro", _GG, 32_760, 8_192, *_GEM10_PRO),
    _m("214", "gemini-1.0-pro-001", _GG, 32_760, 8_192, *_GEM10_PRO),
    _m("215", "gemini-1.0-pro-latest", _GG, 32_760, 8_192, *_GEM10_PRO),
    # Anthropic: cache write = 1.25x input, cache read (cached) = 0.1x input.
    _m("301", "claude-3-5-sonnet-20241022", _AN, 200_000, 8_192, *_SONNET_35),
    _m("302", "claude-3-5-haiku-20241022", _AN, 200_000, 8_192, *_HAIKU_35),
    _m("303", "claude-3-5-opus-20241022", _AN, 200_000, 4_096, *_OPUS_3, note=_N_OPUS_35),
    _m("304", "claude-3-opus-20240229", _AN, 200_000, 4_096, *_OPUS_3),
    _m("305", "claude-3-5-sonnet-latest", _AN, 200_000, 8_192, *_SONNET_35, note=_N_SONNET),
    _m("306", "claude-3-5-haiku-latest", _AN, 200_000, 8_192, *_HAIKU_35, note=_N_HAIKU),
    # OpenAI embeddings: input tokens only (cl100k_base); 8,191 tokens per input.
    _m("131", "text-embedding-3-small", _OA, 8_191, 0, "0.02", "0", **_EMBEDDING),
    _m("132", "text-embedding-3-large", _OA, 8_191, 0, "0.13", "0", **_EMBEDDING),
    _m("133", "text-embedding-ada-002", _OA, 8_191, 0, "0.10", "0", **_EMBEDDING),
    # OpenAI legacy text completions (/v1/completions only).
    _m("134", "gpt-3.5-turbo-instruct", _OA, 4_096, 4_096, "1.50", "2.00", **_COMPLETION),
    # Local mocks (the `mock` provider), priced like their OpenAI counterparts.
    _m("898", "mock-embed-1", "mock", 8_191, 0, "0.02", "0", note=_N_MOCK_EMBED, **_EMBEDDING),
    _m("899", "mock-instruct-1", "mock", 4_096, 4_096, "1.50", "2.00", **_MOCK_COMPLETION),
    _m("900", "mock-1", "mock", 128_000, 16_384, "0.15", "0.60", "0.075", note=_N_MOCK),
)
