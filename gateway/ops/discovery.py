"""Model discovery: each enabled provider's listing against our catalogue.

A model a provider lists that we do not have is recorded inactive, priced at
zero and flagged `needs_price`; a model of ours its provider no longer lists
is marked deprecated (never deleted; it comes back if listed again). A
provider whose listing fails changes nothing. Runs one at a time, on a cron
schedule (`GATEWAY_SYNC_CRON`) and on demand; each provider's outcome (last
run, next run, discovered, updated, deprecated, errors) is kept in the store
and shown by /health and /admin/sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from config_store.cache import ConfigCache
from config_store.documents import (
    model_from_json,
    model_to_json,
    provider_from_json,
    provider_to_json,
)
from config_store.router_config import ConfigInvalid
from config_store.schema import ModelConfig, Provider, iso
from config_store.store import StoreError
from gateway.errors import GatewayError
from gateway.observe import Metrics
from gateway.ops.cron import Cron
from gateway.providers.base import Listed, ModelLister, credentials

log = logging.getLogger("gateway.ops.discovery")
ACTOR = "sync"
Progress = Callable[[int, int, str], None]
_TOKENIZERS = {"openai": "o200k_base", "mock": "o200k_base"}


class DiscoveryBusy(Exception):
    """A sync is already running."""


@dataclass(slots=True)
class Plan:
    new: list[ModelConfig] = field(default_factory=list)
    deprecated: list[ModelConfig] = field(default_factory=list)
    updated: list[ModelConfig] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)  # why each skipped row was


def _listing_problem(item: Listed) -> str | None:
    """What is wrong with a listing entry, if anything: a provider's listing is
    foreign data, so its types are not taken on trust."""
    if not isinstance(item.name, str) or not item.name:
        return f"a listed model has no usable name ({str(item.name)[:60]!r})"
    for name, value in (("context window", item.context_window), ("max output", item.max_output)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"the listed model {item.name[:100]!r} has a {name} that is not an integer"
        if value is not None and value < 0:
            return f"the listed model {item.name[:100]!r} has a negative {name}"
    return None


def _row_problem(model: ModelConfig) -> str | None:
    """Why a model row would not validate (an id stored before a rule existed,
    or a name from a listing that no id may have), if it would not."""
    try:
        model_from_json(model_to_json(model), id=model.id, created_at=model.created_at)
    except ConfigInvalid as exc:
        return f"the model {model.model_id[:100]!r} is skipped: {exc}"
    return None


def plan_discovery(
    provider: Provider,
    listed: Iterable[Listed],
    models: Mapping[str, ModelConfig],
    now: datetime,
) -> Plan:
    """What a listing changes in our catalogue (pure)."""
    ours = [m for m in models.values() if m.provider == provider.id]
    plan = Plan()
    names: dict[str, Listed] = {}
    for item in listed:
        problem = _listing_problem(item)
        if problem is None:
            names[item.name] = item
        else:
            plan.skipped.append(problem)
    known = {m.upstream_name for m in ours}
    numbers = [int(m.id) for m in models.values() if m.id.isdigit()]
    next_id = max(numbers, default=0) + 1
    for name, item in sorted(names.items()):
        if name in known:
            continue
        model_id = name if name not in models else f"{provider.id}/{name}"
        if model_id in models:
            continue  # already recorded under the prefixed name
        window = item.context_window or 8192
        model = ModelConfig(
            id=str(next_id),
            model_id=model_id,
            provider=provider.id,
            input_price_per_million=Decimal(0),
            output_price_per_million=Decimal(0),
            context_window_size=window,
            max_output_tokens=min(item.max_output or 4096, window),
            is_active=False,
            created_at=now,
            upstream_model="" if model_id == name else name,
            tokenizer=_TOKENIZERS.get(provider.kind, "approx"),
            note=f"discovered at {provider.id} on {now.date()}; needs a price",
            mode=item.mode,
            needs_price=True,
        )
        next_id += 1
        _add(plan, plan.new, model)
    for model in ours:
        listed_now = model.upstream_name in names
        if not listed_now and model.deprecated_at is None:
            _add(plan, plan.deprecated, replace(model, deprecated_at=now))
        elif listed_now and model.deprecated_at is not None:
            _add(plan, plan.updated, replace(model, deprecated_at=None))
        else:
            plan.unchanged += 1
    return plan


def _add(plan: Plan, rows: list[ModelConfig], model: ModelConfig) -> None:
    """A row to write, unless it would not validate: then it is skipped (and
    said why), so that one bad row never stops the rest of the run."""
    problem = _row_problem(model)
    if problem is None:
        rows.append(model)
    else:
        plan.skipped.append(problem)


class Discovery:
    def __init__(
        self,
        cache: ConfigCache,
        listers: Mapping[str, Any],
        env: Mapping[str, str],
        reveal: Callable[[str, str], str],
        metrics: Metrics,
        cron: Cron | None,
    ) -> None:
        self._cache = cache
        self._listers = listers  # adapters by provider kind
        self._env = env
        self._reveal = reveal
        self._metrics = metrics
        self._cron = cron
        self._lock = asyncio.Lock()
        self.statuses: dict[str, dict[str, Any]] = {}
        self.next_run: datetime | None = None

    @property
    def running(self) -> bool:
        return self._lock.locked()

    async def load(self) -> None:
        with contextlib.suppress(StoreError):
            self.statuses = await self._cache.store.sync_statuses()
        self._plan_next()

    def _plan_next(self) -> None:
        self.next_run = self._cron.next_after(datetime.now(UTC)) if self._cron else None

    async def run(self, progress: Progress | None = None) -> list[dict[str, Any]]:
        """Sync every enabled provider now; DiscoveryBusy if a run is under way."""
        if self._lock.locked():
            raise DiscoveryBusy
        async with self._lock:
            providers = [
                p
                for p in sorted(self._cache.snapshot.providers.values(), key=lambda p: p.id)
                if p.enabled and isinstance(self._listers.get(p.kind), ModelLister)
            ]
            results = []
            for index, provider in enumerate(providers, start=1):
                result = await self._sync(provider)
                results.append(result)
                if progress is not None:
                    progress(index, len(providers), f"{provider.id}: {result['status']}")
            self._plan_next()
            for result in results:
                result["next_run"] = iso(self.next_run) if self.next_run else None
                self.statuses[result["provider"]] = result
                with contextlib.suppress(StoreError):
                    await self._cache.store.put_sync_status(result["provider"], result)
            await self._cache.refresh()
            return results

    async def _sync(self, provider: Provider) -> dict[str, Any]:
        began = time.perf_counter()
        now = datetime.now(UTC)
        result: dict[str, Any] = {
            "provider": provider.id,
            "last_run": iso(now),
            "status": "ok",
            "discovered": 0,
            "updated": 0,
            "deprecated": 0,
            "unchanged": 0,
            "new_models": [],
            "deprecated_models": [],
            "errors": [],
        }
        try:
            provider_from_json(provider_to_json(provider))
        except ConfigInvalid as exc:
            return self._failed(result, began, f"the provider's stored settings are invalid: {exc}")
        try:
            lister = self._listers[provider.kind]
            if provider.kind == "mock":
                base_url, api_key = "", ""
            else:
                base_url, api_key = credentials(provider, self._env, self._reveal)
            listed = await lister.list_models(base_url, api_key, provider.id)
            plan = plan_discovery(provider, listed, self._cache.snapshot.models, now)
            changes = [
                ("model", m.model_id, model_to_json(m))
                for m in (*plan.new, *plan.deprecated, *plan.updated)
            ]
            if changes:
                await self._cache.store.change_many(
                    changes, actor=ACTOR, reason=f"sync of {provider.id}"
                )
                await self._cache.refresh()  # the next provider numbers its models after these
        except (GatewayError, StoreError) as exc:
            return self._failed(result, began, str(exc))
        except Exception as exc:  # one provider's surprise must not end the run
            log.error("sync of %s failed unexpectedly", provider.id, exc_info=exc)
            return self._failed(result, began, f"unexpected error ({type(exc).__name__})")
        else:
            result.update(
                status="partial" if plan.skipped else "ok",
                errors=plan.skipped,
                discovered=len(plan.new),
                updated=len(plan.updated),
                deprecated=len(plan.deprecated),
                unchanged=plan.unchanged,
                new_models=[m.model_id for m in plan.new],
                deprecated_models=[m.model_id for m in plan.deprecated],
            )
            self._metrics.sync_runs.labels(provider.id, result["status"]).inc()
            self._metrics.models_discovered.labels(provider.id).inc(len(plan.new))
            self._metrics.models_deprecated.labels(provider.id).inc(len(plan.deprecated))
        return self._timed(result, began)

    def _failed(self, result: dict[str, Any], began: float, error: str) -> dict[str, Any]:
        """A provider whose sync changed nothing, and why."""
        result["status"] = "failed"
        result["errors"] = [error]
        self._metrics.sync_runs.labels(result["provider"], "failed").inc()
        log.warning("sync of %s failed: %s", result["provider"], error)
        return self._timed(result, began)

    def _timed(self, result: dict[str, Any], began: float) -> dict[str, Any]:
        seconds = time.perf_counter() - began
        result["duration_seconds"] = round(seconds, 3)
        self._metrics.sync_duration.observe(seconds)
        return result

    async def schedule_forever(self) -> None:
        """Run on the cron schedule; a run already under way skips that turn."""
        while self._cron is not None:
            self._plan_next()
            assert self.next_run is not None
            wait = (self.next_run - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(wait, 0))
            with contextlib.suppress(DiscoveryBusy):
                await self.run()

    def health(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "next_run": iso(self.next_run) if self.next_run else None,
            "providers": {
                name: {
                    k: status.get(k)
                    for k in (
                        "status",
                        "last_run",
                        "next_run",
                        "discovered",
                        "updated",
                        "deprecated",
                        "errors",
                    )
                }
                for name, status in sorted(self.statuses.items())
            },
        }
