"""The local classifier: a request's category and complexity from cheap signals.

Each rule is a compiled pattern with a category and a weight; a rule counts at
most three times. The last user message counts fully, the system prompt at
half weight; images and search-like tools add their own weight. The category
with the highest total wins (ties go to the earlier category in the table); a
request with no signal at all is conversation, or factual when it asks a
question. Complexity comes from the prompt's size (about four characters a
token, against the config's thresholds) and from markers of depth. Pure, and
bounded: only the first and last few thousand characters are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from config_store.router_config import CATEGORIES, RouterConfig
from gateway.autoroute.request import RouteRequest

_HEAD, _TAIL = 3000, 1000  # characters of a long text that are read
_CAP = 3  # matches of one rule that count


@dataclass(frozen=True, slots=True)
class Classification:
    category: str
    complexity: str
    by: str = "local"  # "local", or "model:<id>" when a classifier model decided
    signals: tuple[str, ...] = ()  # the rules that fired, for the simulate endpoint
    note: str = ""  # why a configured classifier model did not decide


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    category: str
    weight: float
    pattern: re.Pattern[str]


def _rule(name: str, category: str, weight: float, pattern: str, flags: int = 0) -> _Rule:
    return _Rule(name, category, weight, re.compile(pattern, flags))


_RULES: tuple[_Rule, ...] = (
    _rule("code_fence", "coding", 4, r"```"),
    _rule(
        "code_syntax",
        "coding",
        2,
        r"\bdef \w+\(|\bclass \w+[:({]|^\s*import \w+|=>|\breturn\b|console\.\w+|#include"
        r"|\bpublic static\b|;\s*$|\{\s*$|\w+\(\)",
        re.MULTILINE,
    ),
    _rule(
        "code_words",
        "coding",
        1.5,
        r"\b(?:code|coding|programm?(?:ing|er)?|function|method|bug|debug\w*|exception|"
        r"stack ?trace|compil\w+|refactor\w*|implement\w*|algorithm|api|regex|sql|query|python|"
        r"javascript|typescript|java|rust|golang|c\+\+|html|css|react|django|flask|docker|"
        r"container|kubernetes|git|branch|commits?|repo|unit tests?|segfault|nullpointer\w*|"
        r"div|flexbox|npm|pip|async|await|promises?|variable|array|o\(1\)|o\(n\)|lru|"
        r"shell script|bash|linux|compiler|syntax|runtime|deploy\w*)\b",
    ),
    _rule(
        "math",
        "reasoning",
        2.5,
        r"\d\s*[-+*/^=\u00d7\u00f7]\s*\d|\d\s*x\b|\bx\s*[-+*/^=]|\bx\^\d|\^\d",
    ),
    _rule(
        "logic_words",
        "reasoning",
        2,
        r"\b(?:prove|proof|solve|equations?|integral|derivative|calculate|compute|"
        r"probability|odds|logic(?:al)?|puzzle|riddle|deduce|theorem|irrational|"
        r"how many ways|step by step|reasoning|if all|all \w+ are|definitely|arithmetic|"
        r"combinatorics|permutations?|at least one)\b",
    ),
    _rule("quantities", "reasoning", 1, r"\b(?:more than|less than|twice|half as|in total)\b"),
    _rule(
        "creative_forms",
        "creative",
        2,
        r"\b(?:story|stories|poem|poetry|haiku|limerick|sonnet|lyrics|song|ballad|fiction|"
        r"novel|fantasy|character|villain|plot|imagine|creative|slogans?|taglines?|toast|"
        r"speech|joke|rap|screenplay|metaphor|fairy tale|describe a day|backstory|catchy|"
        r"in the style of)\b",
    ),
    _rule("creative_verbs", "creative", 1, r"\b(?:write|compose|draft|create|invent|brainstorm)\b"),
    _rule(
        "question_start",
        "factual",
        1.5,
        r"^\s*(?:what|who|when|where|which|how many|how much|how old|is|are|does|did)\b",
    ),
    _rule(
        "fact_words",
        "factual",
        2,
        r"\b(?:capital of|who (?:wrote|invented|discovered|painted|founded)|when (?:did|was|is)|"
        r"what year|how many|how far|how tall|population|define|definition|meaning of|"
        r"stand for|acronym|boiling point|located|founded|which (?:planet|country|city|element))\b",
    ),
    _rule(
        "analysis_words",
        "analysis",
        2,
        r"\b(?:analy[sz]e|analysis|compare|comparison|contrast|evaluate|evaluation|assess|"
        r"pros and cons|trade-?offs?|strengths|weaknesses|summari[sz]e|trends?|critique|"
        r"methodology|implications|break down|breakdown|cost structure|margins?|causes|"
        r"relative importance|insights?|versus|whether the conclusion)\b",
    ),
    _rule(
        "greeting",
        "conversation",
        3,
        r"^\s*(?:hi|hello|hey|yo|good (?:morning|evening|afternoon|night)|thanks|thank you|"
        r"lol|haha|ok(?:ay)?|cool|nice)\b",
    ),
    _rule(
        "small_talk",
        "conversation",
        2,
        r"\b(?:how are you|about yourself|how's it going|bored|feeling|my day|my dog|lovely|"
        r"chat|talk about|you like|haha|lol|sleep well)\b|:\)",
    ),
    _rule(
        "image_words",
        "multimodal",
        1,
        r"\b(?:image|picture|photo|screenshot|diagram|chart|graph|drawing|receipt|scan)\b",
    ),
    _rule(
        "research_words",
        "research",
        2,
        r"\b(?:sources?|cite|citations?|citing|references|links?|peer-reviewed|literature|"
        r"papers?|studies|evidence|search|look up|latest|recent|current|news|statistics|"
        r"investigate|research|consensus|academic)\b",
    ),
)
_IMAGE_WEIGHT = 6.0
_SEARCH_TOOL_WEIGHT = 3.0
_SEARCH_TOOL = re.compile(r"search|browse|web|lookup|retriev")
_DEPTH = re.compile(
    r"\b(?:step by step|in detail|detailed|comprehensive|thorough(?:ly)?|in[- ]depth|"
    r"rigorous(?:ly)?|prove|proof|architecture|design a|optimi[sz]e|trade-?offs?|"
    r"each of|literature review)\b"
)
_NUMBERED = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)


def _bounded(text: str) -> str:
    if len(text) <= _HEAD + _TAIL:
        return text.lower()
    return (text[:_HEAD] + "\n" + text[-_TAIL:]).lower()


def classify(request: RouteRequest, config: RouterConfig) -> Classification:
    user, system = _bounded(request.user), _bounded(request.system)
    totals = dict.fromkeys(CATEGORIES, 0.0)
    fired: list[str] = []
    for rule in _RULES:
        found = min(len(rule.pattern.findall(user)), _CAP)
        found_system = min(len(rule.pattern.findall(system)), _CAP) if system else 0
        if found or found_system:
            totals[rule.category] += rule.weight * (found + found_system / 2)
            fired.append(rule.name)
    if request.images:
        totals["multimodal"] += _IMAGE_WEIGHT
        fired.append("images")
    if any(_SEARCH_TOOL.search(name.lower()) for name in request.tools):
        totals["research"] += _SEARCH_TOOL_WEIGHT
        fired.append("search_tool")
    best = max(CATEGORIES, key=lambda category: totals[category])  # first of equals wins
    if totals[best] == 0:
        best = "factual" if user.rstrip().endswith("?") else "conversation"
    return Classification(best, _complexity(request, user, config), "local", tuple(fired))


def _complexity(request: RouteRequest, user: str, config: RouterConfig) -> str:
    tokens = (len(request.user) + len(request.system)) // 4
    depth = len(_DEPTH.findall(user)) + user.count("```") // 2
    if len(_NUMBERED.findall(user)) >= 3:
        depth += 1
    if tokens >= config.complex_min_tokens or depth >= 2:
        return "complex"
    if tokens <= config.simple_max_tokens and depth == 0 and not request.tools:
        return "simple"
    return "medium"
