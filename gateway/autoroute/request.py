"""What the router reads from a chat request: its texts, what it needs
(vision, tools, JSON mode) and which conversation it belongs to. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_IMAGE_PARTS = {"image_url", "image", "input_image"}


@dataclass(frozen=True, slots=True)
class RouteRequest:
    system: str  # the system (and developer) messages' text
    user: str  # the last user message's text
    first_user: str  # the first user message's text
    images: int
    tools: tuple[str, ...]  # the names of the tools offered
    json_mode: bool  # response_format asks for JSON
    turns: int  # messages in the conversation

    @property
    def needs(self) -> frozenset[str]:
        """The capabilities a model must have to serve this request."""
        wanted = set()
        if self.images:
            wanted.add("vision")
        if self.tools:
            wanted.add("tools")
        if self.json_mode:
            wanted.add("json_mode")
        return frozenset(wanted)

    def conversation_id(self, header: str | None) -> str:
        """The client's `x-conversation-id`, else one derived from how the
        conversation began (its system prompt and first user message), which
        stays the same as turns are added."""
        if header:
            return f"client:{header.strip()[:200]}"
        digest = hashlib.sha256(f"{self.system}\x00{self.first_user}".encode()).hexdigest()
        return f"derived:{digest[:32]}"


def _text(content: Any) -> tuple[str, int]:
    """A message content's text and how many images it holds."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0
    texts, images = [], 0
    for part in content:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") in _IMAGE_PARTS:
            images += 1
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
    return " ".join(texts), images


def _tool_names(body: Mapping[str, Any]) -> tuple[str, ...]:
    names = []
    for tool in body.get("tools") or body.get("functions") or ():
        if not isinstance(tool, Mapping):
            continue
        function = tool.get("function") if isinstance(tool.get("function"), Mapping) else tool
        name = function.get("name") if isinstance(function, Mapping) else None
        names.append(name if isinstance(name, str) else "")
    return tuple(names)


def read_request(body: Mapping[str, Any], messages: list[Any]) -> RouteRequest:
    system: list[str] = []
    users: list[str] = []
    images = 0
    for message in messages:
        text, found = _text(message.get("content"))
        images += found
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            users.append(text)
    response_format = body.get("response_format")
    json_mode = isinstance(response_format, Mapping) and response_format.get("type") in (
        "json_object",
        "json_schema",
    )
    return RouteRequest(
        system="\n".join(system),
        user=users[-1] if users else "",
        first_user=users[0] if users else "",
        images=images,
        tools=_tool_names(body),
        json_mode=json_mode,
        turns=len(messages),
    )
