"""The local classifier against labelled prompts, and what it reads from a request."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from config_store.router_config import CATEGORIES, RouterConfig
from gateway.autoroute.classifier import classify
from gateway.autoroute.decision import parse_classifier_answer
from gateway.autoroute.request import read_request
from tests.router_corpus import CORPUS, HELD_OUT

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def user_message(text: str, image: bool = False) -> dict[str, Any]:
    content: Any = [{"type": "text", "text": text}, IMAGE] if image else text
    return {"role": "user", "content": content}


def agreement(corpus: tuple[tuple[str, str, bool], ...]) -> tuple[int, list[str]]:
    config = RouterConfig()
    misses = []
    for label, text, image in corpus:
        got = classify(read_request({}, [user_message(text, image)]), config).category
        if got != label:
            misses.append(f"{label} -> {got}: {text[:60]}")
    return len(corpus) - len(misses), misses


def test_corpus_covers_every_category():
    counts = Counter(label for label, _, _ in CORPUS + HELD_OUT)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 8
    assert len(CORPUS + HELD_OUT) >= 40


def test_classifier_agrees_with_the_labels_at_least_85_percent():
    matched, misses = agreement(CORPUS + HELD_OUT)
    total = len(CORPUS) + len(HELD_OUT)
    # Reported in the issue note: 84 of 88 (95.5%); 20 of the 24 held-out prompts.
    assert matched / total >= 0.85, misses
    held_matched, held_misses = agreement(HELD_OUT)
    assert held_matched >= 20, held_misses


@pytest.mark.parametrize(
    ("text", "complexity"),
    [
        ("What is the capital of France?", "simple"),
        ("Explain in detail how a hash map handles collisions.", "medium"),  # one depth marker
        ("Explain, step by step and in detail, how TCP congestion control works.", "complex"),
        ("word " * 900, "complex"),  # 4,500 characters: about 1,125 tokens
    ],
)
def test_complexity_from_length_and_depth(text: str, complexity: str):
    assert classify(read_request({}, [user_message(text)]), RouterConfig()).complexity == complexity


def test_complexity_thresholds_are_config():
    request = read_request({}, [user_message("Explain how a hash map handles collisions.")])
    assert classify(request, RouterConfig()).complexity == "simple"
    stricter = RouterConfig.from_json({"classifier": {"simple_max_tokens": 5}})
    assert classify(request, stricter).complexity == "medium"
    tiny = RouterConfig.from_json({"classifier": {"simple_max_tokens": 0, "complex_min_tokens": 5}})
    assert classify(request, tiny).complexity == "complex"


def test_images_tools_and_the_system_prompt_are_signals():
    config = RouterConfig()
    with_image = read_request({}, [user_message("What is this?", image=True)])
    assert classify(with_image, config).category == "multimodal"
    search_tool = {"type": "function", "function": {"name": "web_search", "parameters": {}}}
    with_tool = read_request({"tools": [search_tool]}, [user_message("Tell me about otters")])
    assert classify(with_tool, config).category == "research"
    assert classify(with_tool, config).complexity == "medium"  # tools are never simple
    coached = read_request(
        {},
        [
            {"role": "system", "content": "You are a Python programming assistant. Debug code."},
            user_message("It still fails"),
        ],
    )
    assert classify(coached, config).category == "coding"


def test_what_a_request_needs():
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    tool = {"type": "function", "function": {"name": "get_weather"}}
    request = read_request(
        {"tools": [tool], "response_format": schema},
        [user_message("hi", image=True)],
    )
    assert request.needs == {"vision", "tools", "json_mode"}
    assert request.tools == ("get_weather",)
    assert read_request({}, [user_message("hi")]).needs == frozenset()


def test_conversation_id_is_stable_across_turns_and_the_header_wins():
    first = [{"role": "system", "content": "Be kind."}, user_message("Plan a trip to Rome")]
    later = [
        *first,
        {"role": "assistant", "content": "Sure!"},
        user_message("Now make it cheaper"),
    ]
    one, two = read_request({}, first), read_request({}, later)
    assert one.conversation_id(None) == two.conversation_id(None)
    assert one.conversation_id(None).startswith("derived:")
    other = read_request({}, [user_message("Plan a trip to Paris")])
    assert other.conversation_id(None) != one.conversation_id(None)
    assert one.conversation_id("abc") == "client:abc"


def test_parsing_a_classifier_models_answer():
    assert parse_classifier_answer('{"category": "coding", "complexity": "simple"}') == (
        "coding",
        "simple",
    )
    noisy = 'Sure! ```json\n{"category": "Research", "complexity": "complex"}\n```'
    assert parse_classifier_answer(noisy) == ("research", "complex")
    assert parse_classifier_answer('{"category": "poetry", "complexity": "simple"}') is None
    assert parse_classifier_answer("coding, simple") is None
