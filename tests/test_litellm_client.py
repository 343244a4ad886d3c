"""The litellm client, pointed at the gateway as an OpenAI-compatible host: no
warning on a call, and the cost it reads is the gateway's, to the nano-USD."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.harness import GatewayServer, expected_cost_nano, usd_text

MINI = "gpt-4o-mini-2024-07-18"


def serialization_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """What litellm says when a field is not the type it expects (a cost sent as a
    string was one); its warnings about its own types on first use are not ours."""
    return [str(w.message) for w in caught if "serializ" in str(w.message).lower()]


@pytest.fixture(scope="module")
def litellm() -> Iterator[Any]:
    # litellm fetches a price list from the network on import unless told not to.
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm as module

    module.telemetry = False
    yield module


def test_a_litellm_call_reads_the_gateway_cost_without_a_warning(
    litellm: Any, gateway: GatewayServer, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
):
    def call() -> Any:
        return litellm.completion(
            model=f"openai/{MINI}",
            api_base=f"{gateway.base_url}/v1",
            api_key=gateway.demo_key,
            messages=[{"role": "user", "content": "hello litellm"}],
        )

    with warnings.catch_warnings():
        # litellm's first call imports its own types, which warn about themselves.
        warnings.simplefilter("ignore")
        call()
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        response = call()
    usage = fake_openai.responses[-1]["usage"]
    cost = expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60")
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.name.lower().startswith("litellm")] == []
    assert response.choices[0].message.content == "Echo: hello litellm"
    assert Decimal(repr(response.usage.cost)) == Decimal(usd_text(cost))
    headers = response._hidden_params["additional_headers"]
    assert headers["llm_provider-x-gateway-cost-usd"] == usd_text(cost)
    assert response._hidden_params["response_cost"] == response.usage.cost  # ours, not its own


def test_a_litellm_stream_reads_the_gateway_cost_from_the_last_chunk(
    litellm: Any, gateway: GatewayServer, fake_openai: FakeOpenAI
):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chunks = list(
            litellm.completion(
                model=f"openai/{MINI}",
                api_base=f"{gateway.base_url}/v1",
                api_key=gateway.demo_key,
                messages=[{"role": "user", "content": "stream for litellm"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    usage = fake_openai.responses[-1]["usage"]
    cost = expected_cost_nano(usage["prompt_tokens"], usage["completion_tokens"], "0.15", "0.60")
    assert serialization_warnings(caught) == []
    last = chunks[-1].usage
    assert Decimal(repr(last.cost)) == Decimal(usd_text(cost))
    assert -gateway.charges()[-1]["amount_nano"] == cost
