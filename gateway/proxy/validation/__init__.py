"""Checking a client's request before anything is built from it: the JSON
body, then the fields of its kind of request (OpenAI chat, embeddings, legacy
completions, Anthropic Messages). Pure functions; a failure is a 400 naming
the field."""

from gateway.proxy.validation.body import (
    COMPLETION_DEFAULT_MAX_TOKENS,
    parse_body,
    validate_completion,
    validate_embedding,
)
from gateway.proxy.validation.chat import validate_chat
from gateway.proxy.validation.messages import validate_count_tokens, validate_messages

__all__ = [
    "COMPLETION_DEFAULT_MAX_TOKENS",
    "parse_body",
    "validate_chat",
    "validate_completion",
    "validate_count_tokens",
    "validate_embedding",
    "validate_messages",
]
