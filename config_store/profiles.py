"""The auto-router's seeded model profiles: one per chat model of the demo catalogue.

Scores are 0-100 per category, judged from public benchmarks and the models'
documented strengths; they are starting points for operators to tune through
`PUT /admin/router/profiles/{model}`, not measurements. Embedding and legacy
completion models have no profile, so `model: "auto"` never picks them.
"""

from __future__ import annotations

from config_store.router_config import CATEGORIES, ModelProfile

_V, _T, _J, _R, _S = "vision", "tools", "json_mode", "reasoning", "research"
_CHAT = (_V, _T, _J)

# model id, quality, speed tier, the eight scores in CATEGORIES order
# (coding, reasoning, creative, factual, analysis, conversation, multimodal, research),
# capabilities.
_ROWS: tuple[tuple[str, int, str, tuple[int, ...], tuple[str, ...]], ...] = (
    ("gpt-4.1-2025-04-14", 88, "medium", (90, 82, 84, 86, 86, 84, 84, 80), (*_CHAT, _S)),
    ("gpt-4.1-mini-2025-04-14", 78, "fast", (82, 72, 74, 78, 77, 80, 76, 68), _CHAT),
    ("gpt-4.1-nano-2025-04-14", 62, "fast", (64, 55, 60, 65, 60, 72, 62, 50), _CHAT),
    ("gpt-4.5-preview-2025-02-27", 90, "slow", (84, 82, 94, 92, 88, 93, 86, 84), _CHAT),
    ("gpt-4o-2024-08-06", 84, "medium", (82, 76, 85, 84, 83, 88, 88, 74), _CHAT),
    ("gpt-4o-2024-11-20", 85, "medium", (82, 76, 88, 84, 83, 89, 88, 74), _CHAT),
    ("gpt-4o-2024-05-13", 82, "medium", (80, 74, 83, 82, 81, 86, 86, 72), _CHAT),
    ("gpt-4o-mini-2024-07-18", 72, "fast", (72, 64, 72, 74, 70, 80, 74, 60), _CHAT),
    ("o1-2024-12-17", 90, "slow", (88, 95, 72, 86, 90, 66, 78, 84), (*_CHAT, _R)),
    ("o3-2025-04-16", 93, "slow", (93, 97, 76, 88, 93, 68, 86, 92), (*_CHAT, _R, _S)),
    ("o3-mini-2025-01-31", 84, "medium", (88, 90, 62, 76, 82, 60, 0, 70), (_T, _J, _R)),
    ("o1-mini-2024-09-12", 78, "medium", (84, 86, 58, 70, 76, 55, 0, 60), (_R,)),
    ("codex-mini-latest", 82, "medium", (92, 80, 50, 64, 72, 50, 0, 55), (_T, _J, _R)),
    ("gemini-2.5-pro", 92, "medium", (91, 94, 84, 90, 92, 82, 92, 92), (*_CHAT, _R, _S)),
    ("gemini-2.5-flash", 82, "fast", (82, 84, 76, 82, 82, 80, 84, 80), (*_CHAT, _R)),
    ("gemini-2.5-flash-lite-preview-06-17", 68, "fast", (66, 64, 64, 72, 66, 74, 72, 62), _CHAT),
    ("gemini-2.0-flash", 74, "fast", (72, 68, 70, 78, 72, 78, 80, 70), _CHAT),
    ("gemini-2.0-flash-lite", 66, "fast", (62, 58, 62, 70, 62, 72, 72, 58), _CHAT),
    ("gemini-1.5-flash", 64, "fast", (60, 56, 62, 68, 62, 72, 72, 60), _CHAT),
    ("gemini-1.5-flash-8b", 56, "fast", (50, 46, 54, 60, 52, 66, 64, 50), _CHAT),
    ("gemini-1.5-flash-1b", 50, "fast", (44, 40, 50, 54, 46, 62, 58, 44), _CHAT),
    ("gemini-1.5-pro", 76, "medium", (74, 72, 76, 80, 78, 78, 82, 76), _CHAT),
    ("gemini-1.5-pro-1m", 76, "medium", (74, 72, 76, 80, 78, 78, 82, 76), _CHAT),
    ("gemini-1.5-pro-latest", 76, "medium", (74, 72, 76, 80, 78, 78, 82, 76), _CHAT),
    ("gemini-1.5-flash-latest", 64, "fast", (60, 56, 62, 68, 62, 72, 72, 60), _CHAT),
    ("gemini-1.0-pro", 52, "fast", (46, 42, 52, 58, 48, 64, 0, 44), (_T,)),
    ("gemini-1.0-pro-001", 52, "fast", (46, 42, 52, 58, 48, 64, 0, 44), (_T,)),
    ("gemini-1.0-pro-latest", 52, "fast", (46, 42, 52, 58, 48, 64, 0, 44), (_T,)),
    ("claude-3-5-sonnet-20241022", 88, "medium", (92, 84, 88, 84, 88, 88, 84, 82), (_V, _T)),
    ("claude-3-5-haiku-20241022", 74, "fast", (78, 66, 74, 74, 72, 80, 0, 64), (_T,)),
    ("claude-3-5-opus-20241022", 86, "slow", (84, 84, 92, 86, 88, 88, 82, 82), (_V, _T)),
    ("claude-3-opus-20240229", 86, "slow", (84, 84, 92, 86, 88, 88, 82, 82), (_V, _T)),
    ("claude-3-5-sonnet-latest", 88, "medium", (92, 84, 88, 84, 88, 88, 84, 82), (_V, _T)),
    ("claude-3-5-haiku-latest", 74, "fast", (78, 66, 74, 74, 72, 80, 0, 64), (_T,)),
    # The offline mock answers anything, so it claims every plain capability.
    ("mock-1", 40, "fast", (40, 40, 40, 40, 40, 40, 40, 40), _CHAT),
)

DEMO_PROFILES: tuple[ModelProfile, ...] = tuple(
    ModelProfile(
        model_id=model_id,
        quality=quality,
        speed_tier=speed,
        scores=dict(zip(CATEGORIES, scores, strict=True)),
        capabilities=frozenset(capabilities),
    )
    for model_id, quality, speed, scores, capabilities in _ROWS
)
