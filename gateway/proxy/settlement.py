"""The last stage of the metered path: the money rule (`billing.settlement`)
applied to a request, its ledger row, and the hold ended whatever happens."""

from __future__ import annotations

import functools
from collections.abc import Callable

import orjson

from billing.ledger_types import LedgerEntry, LedgerError
from billing.pricing import Prices, Usage
from billing.settlement import Charge, Reported, charge
from gateway.errors import unavailable
from gateway.observe import current
from gateway.providers.base import ChatResult
from gateway.proxy.admitted import Admitted, Settled
from gateway.proxy.core import Core


@functools.lru_cache(maxsize=1024)
def prices_json(prices: Prices) -> str:
    """The copy of the prices kept on each ledger row; few distinct values, so cached."""
    return orjson.dumps(prices.as_dict()).decode()


def ledger_entry(admitted: Admitted, billed: Charge) -> LedgerEntry:
    usage = billed.usage
    pays = admitted.payer
    return LedgerEntry(
        request_id=admitted.request_id,
        user_id=admitted.user.id,
        kind="charge",
        amount_nano=-billed.amount_nano,
        created_at=admitted.started_at,
        model_id=admitted.model.model_id,
        provider=admitted.model.provider,
        key_prefix=admitted.key.prefix,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        prices=prices_json(admitted.prices),
        key_id=admitted.key.id,
        uncollected_nano=billed.uncollected_nano,
        usage_source=billed.source,
        usage_raw=billed.raw,
        team_id=pays.team_id if pays else "",
        paid_by=pays.paid_by if pays else "",
        end_user=pays.end_user if pays else "",
    )


def charge_for(
    core: Core,
    admitted: Admitted,
    reported: Reported,
    texts: Callable[[], list[str]],
    *,
    complete: bool = True,
) -> Charge:
    """The money rule applied to this request: `texts` gives what was relayed,
    for our own count when the provider's is missing, implausible or unfinished.
    Noted on the request's record for its metrics."""

    def counted() -> Usage:
        output = core.counter.count("".join(texts()), admitted.model.tokenizer)
        return Usage(prompt_tokens=admitted.prompt_estimate, completion_tokens=output)

    own = None if complete and isinstance(reported, Usage) else counted()
    billed = charge(
        admitted.hold.amount_nano, admitted.prices, reported, own or Usage(0, 0), complete=complete
    )
    record = current()
    if record is not None and record.request_id == admitted.request_id:
        record.prompt_tokens = billed.usage.prompt_tokens
        record.completion_tokens = billed.usage.completion_tokens
        record.cost_nano = billed.amount_nano
        record.uncollected_nano = billed.uncollected_nano
        record.usage_source = billed.source
    return billed


async def settle(
    core: Core,
    admitted: Admitted,
    reported: Reported,
    texts: Callable[[], list[str]],
    *,
    complete: bool = True,
) -> Settled:
    """Charge the request and wait for its ledger row to commit. Whatever
    happens, the hold ends here: charged, or released if nothing could be."""
    try:
        billed = charge_for(core, admitted, reported, texts, complete=complete)
        balance = await core.meter.settle(admitted.hold, ledger_entry(admitted, billed))
    except LedgerError as exc:
        raise unavailable(
            "The request could not be recorded in the ledger, so it is not delivered.",
            code="ledger_unavailable",
        ) from exc
    finally:
        core.meter.release(admitted.hold)
    return Settled(billed, balance, admitted.prices)


def message_texts(result: ChatResult) -> list[str]:
    """The output of a chat answer, as texts to count: contents and tool calls."""
    texts: list[str] = []
    for choice in result.body.get("choices") or ():
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):
            texts.append(message["content"])
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            texts.extend(str(function.get(k) or "") for k in ("name", "arguments"))
    return texts
