from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from billing.tokens import TokenCounter
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.firestore_emulator import emulator, gcloud
from tests.harness import GatewayServer


@pytest.fixture(scope="session")
def tiktoken_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh, empty cache directory: the encodings must come from the bundled
    copy. tiktoken finds its cache through TIKTOKEN_CACHE_DIR in this process's
    environment (as the gateway's settings do), so it is set for the session:
    without it tiktoken would look in its default directory and, where that is
    empty, try to download."""
    path = tmp_path_factory.mktemp("tiktoken-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="session")
def counter(tiktoken_dir: Path) -> TokenCounter:
    return TokenCounter(tiktoken_dir)


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake_openai_server.reset()
    yield fake_openai_server
    fake_openai_server.reset()


@pytest.fixture
def make_gateway(
    tmp_path: Path, counter: TokenCounter, fake_openai: FakeOpenAI, tiktoken_dir: Path
) -> Iterator[Callable[..., GatewayServer]]:
    started: list[GatewayServer] = []

    def make(env: dict[str, str] | None = None, **kwargs: object) -> GatewayServer:
        environ = {
            "OPENAI_BASE_URL": fake_openai.base_url,
            "OPENAI_API_KEY": "sk-fake-upstream",
            "TIKTOKEN_CACHE_DIR": str(tiktoken_dir),
            **(env or {}),
        }
        server = GatewayServer(tmp_path / f"data{len(started)}", counter, environ, **kwargs)  # type: ignore[arg-type]
        started.append(server.start())
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def gateway(make_gateway: Callable[..., GatewayServer]) -> GatewayServer:
    return make_gateway()


@pytest.fixture(scope="module")
def module_gateway(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    counter: TokenCounter,
    fake_openai_server: FakeOpenAI,
    tiktoken_dir: Path,
) -> Iterator[GatewayServer]:
    """One gateway (OpenAI's credentials only, on the fake) for a module whose tests
    leave it as they found it; the module's `GATEWAY_ENV` adds settings."""
    env = {
        "OPENAI_BASE_URL": fake_openai_server.base_url,
        "OPENAI_API_KEY": "sk-fake-upstream",
        "TIKTOKEN_CACHE_DIR": str(tiktoken_dir),
        **getattr(request.module, "GATEWAY_ENV", {}),
    }
    name = request.module.__name__.rsplit(".", 1)[-1]
    with GatewayServer(tmp_path_factory.mktemp(name) / "data", counter, env) as server:
        yield server


@pytest.fixture(scope="session")
def firestore_host() -> Iterator[str]:
    """The Firestore emulator's host:port, for the whole session."""
    if gcloud() is None:
        pytest.skip("the Google Cloud CLI (gcloud) is not installed: no Firestore emulator")
    with emulator() as host:
        yield host


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FakeAnthropic, FakeGemini]]:
    """A fake Anthropic and a fake Gemini, for a module's gateways."""
    with FakeAnthropic() as claude, FakeGemini() as gemini:
        yield claude, gemini


@pytest.fixture(scope="module")
def every_provider_env(
    fake_openai_server: FakeOpenAI,
    upstreams: tuple[FakeAnthropic, FakeGemini],
    tiktoken_dir: Path,
) -> dict[str, str]:
    """A gateway's environment with OpenAI, Claude and Gemini models all served by fakes."""
    claude, gemini = upstreams
    return {
        "OPENAI_BASE_URL": fake_openai_server.base_url,
        "OPENAI_API_KEY": fake_openai_server.api_key,
        "ANTHROPIC_BASE_URL": claude.base_url,
        "ANTHROPIC_API_KEY": claude.api_key,
        "GEMINI_BASE_URL": gemini.base_url,
        "GEMINI_API_KEY": gemini.api_key,
        "TIKTOKEN_CACHE_DIR": str(tiktoken_dir),
    }
