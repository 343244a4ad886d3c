"""What the gateway tells its operators: Prometheus metrics and one JSON log
line per request.

A request's facts are gathered in a `RequestRecord` as it goes: the endpoint
opens one (a context variable, so the pipeline and a stream's tasks reach the
same record without passing it along), admission names the key and model,
serving the provider and its latency, settlement the tokens and the cost; the
endpoint then counts it and writes its log line. The line never holds a
prompt, a completion or a secret: only ids, names, numbers.

`Activity` keeps the last hour minute by minute (requests, errors, spend, by
model and provider) for the console's overview; each instance counts its own.

Label values are bounded: routes are our route templates, models and
providers are names from the snapshot (anything else is "other"), statuses
are HTTP codes. No user id or raw path is ever a label.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from billing.balance_view import StoreState
from billing.ledger_types import LedgerHealth
from billing.pricing import usd
from gateway.console.activity import Activity

request_log = logging.getLogger("gateway.requests")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_COMMIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)
_CHECKPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


@dataclass(slots=True)
class RequestRecord:
    route: str
    started: float = field(default_factory=time.perf_counter)
    request_id: str = ""
    key_prefix: str = ""
    model: str = ""
    provider: str = ""
    status: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_nano: int | None = None
    uncollected_nano: int = 0  # priced beyond the hold, not charged
    usage_source: str = ""  # where the billed tokens came from (billing.settlement)
    upstream_seconds: float | None = None
    error_code: str | None = None

    def line(self) -> bytes:
        """The request's JSON log line."""
        return orjson.dumps(
            {
                "request_id": self.request_id or None,
                "route": self.route,
                "key_prefix": self.key_prefix or None,
                "model": self.model or None,
                "provider": self.provider or None,
                "status": self.status,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cost_usd": None if self.cost_nano is None else usd(self.cost_nano),
                "uncollected_usd": usd(self.uncollected_nano) if self.uncollected_nano else None,
                "usage_source": self.usage_source or None,
                "latency_ms": round((time.perf_counter() - self.started) * 1000, 3),
                "upstream_ms": (
                    None
                    if self.upstream_seconds is None
                    else round(self.upstream_seconds * 1000, 3)
                ),
                "error": self.error_code,
            }
        )


CURRENT: ContextVar[RequestRecord | None] = ContextVar("gateway_request", default=None)


def current() -> RequestRecord | None:
    return CURRENT.get()


class Metrics:
    """The process's metrics, in a registry of its own (never a global one)."""

    def __init__(self, stats: Callable[[], dict[str, Any]] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gateway_requests", "Requests by route, model, provider and status.",
            ["route", "model", "provider", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "gateway_request_duration_seconds", "Time from request to the last byte.",
            ["route"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.upstream_latency = Histogram(
            "gateway_upstream_duration_seconds", "Time a provider took to answer (first byte).",
            ["provider"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "gateway_tokens", "Tokens billed, by model and direction (in, out).",
            ["model", "direction"], registry=r,
        )  # fmt: skip
        self.cost = Counter(
            "gateway_cost_nano_usd", "Nano-USD charged, by model.", ["model"], registry=r
        )
        self.uncollected = Counter(
            "gateway_uncollected_nano_usd",
            "Nano-USD a provider's usage priced beyond the request's hold (not charged), by model.",
            ["model"], registry=r,
        )  # fmt: skip
        self.usage_anomalies = Counter(
            "gateway_usage_anomalies",
            "Provider usage reports that were not plausible token counts (billed from our count).",
            ["model", "provider"], registry=r,
        )  # fmt: skip
        self.ledger_batch = Histogram(
            "gateway_ledger_batch_rows", "Rows per ledger commit.",
            buckets=_BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.ledger_commit = Histogram(
            "gateway_ledger_commit_seconds", "Time of one ledger commit.",
            buckets=_COMMIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.ledger_checkpoint = Histogram(
            "gateway_ledger_checkpoint_seconds",
            "Time the ledger writer waited for a WAL checkpoint (rows queue meanwhile).",
            buckets=_CHECKPOINT_BUCKETS, registry=r,
        )  # fmt: skip
        self.sync_runs = Counter(
            "gateway_sync_runs", "Provider sync runs, by provider and outcome.",
            ["provider", "outcome"], registry=r,
        )  # fmt: skip
        self.sync_duration = Histogram(
            "model_sync_duration_seconds", "Time of one sync run.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.models_discovered = Counter(
            "models_discovered", "Models found new at a provider.", ["provider"], registry=r
        )
        self.models_deprecated = Counter(
            "models_deprecated", "Models gone from a provider's listing.", ["provider"], registry=r
        )
        self.alerts = Counter(
            "gateway_alerts", "Alerts set off (status fired) and their deliveries' outcomes.",
            ["event", "status"], registry=r,
        )  # fmt: skip
        if stats is not None:
            r.register(_CacheCollector(stats))
        self._children: dict[tuple[str, str, str, int], _Children] = {}
        self.activity = Activity()  # the last hour, minute by minute, for the console

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def alert(self, event: str, status: str = "fired") -> None:
        self.alerts.labels(event, status).inc()

    def ledger_batch_written(self, rows: int, seconds: float) -> None:
        self.ledger_batch.observe(rows)
        self.ledger_commit.observe(seconds)

    def ledger_checkpointed(self, seconds: float) -> None:
        self.ledger_checkpoint.observe(seconds)

    def watch_ledger(self, state: Callable[[], tuple[bool, LedgerHealth]]) -> None:
        """Report the ledger's state at each scrape: (started, its health)."""
        self.registry.register(_LedgerCollector(state))

    def watch_store(self, state: Callable[[], StoreState | None]) -> None:
        """Report the shared store's state at each scrape (Firestore)."""
        self.registry.register(_StoreCollector(state))

    def finished(self, record: RequestRecord, known: Callable[[str, str], tuple[str, str]]) -> None:
        """Count a finished request; `known` bounds its model and provider labels."""
        model, provider = known(record.model, record.provider)
        key = (record.route, model, provider, record.status)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and hashes: once per label set
            children = self._children[key] = _Children(
                self.requests.labels(record.route, model, provider, str(record.status)),
                self.latency.labels(record.route),
                self.upstream_latency.labels(provider),
                self.tokens.labels(model, "in"),
                self.tokens.labels(model, "out"),
                self.cost.labels(model),
            )
        children.requests.inc()
        children.latency.observe(time.perf_counter() - record.started)
        if record.upstream_seconds is not None:
            children.upstream.observe(record.upstream_seconds)
        if record.cost_nano is not None:
            children.tokens_in.inc(record.prompt_tokens)
            children.tokens_out.inc(record.completion_tokens)
            children.cost.inc(record.cost_nano)
        if record.uncollected_nano:
            self.uncollected.labels(model).inc(record.uncollected_nano)
        if record.usage_source == "anomaly":
            self.usage_anomalies.labels(model, provider).inc()
        self.activity.add(
            model if record.model else "", provider if record.provider else "",
            record.status, record.cost_nano or 0,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Children:
    """The metric children of one label set, looked up once."""

    requests: Any
    latency: Any
    upstream: Any
    tokens_in: Any
    tokens_out: Any
    cost: Any


class _CacheCollector(Collector):
    """The config cache's counters, read when Prometheus scrapes."""

    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Any]:
        stats = self._stats()
        for name, key, text in (
            ("gateway_cache_hits", "hits", "Model lookups found in the snapshot."),
            ("gateway_cache_misses", "misses", "Model lookups not found in the snapshot."),
            ("gateway_snapshot_refreshes", "refreshes", "Snapshot refreshes that succeeded."),
            (
                "gateway_snapshot_refresh_failures",
                "refresh_failures",
                "Snapshot refreshes that failed.",
            ),
        ):
            family = CounterMetricFamily(name, text)
            family.add_metric([], stats.get(key, 0))
            yield family
        age = GaugeMetricFamily("gateway_snapshot_age_seconds", "Age of the config snapshot.")
        age.add_metric([], stats.get("snapshot_age_seconds", 0))
        yield age


class _LedgerCollector(Collector):
    """Whether the ledger writes, and what failed, read when Prometheus scrapes."""

    def __init__(self, state: Callable[[], tuple[bool, LedgerHealth]]) -> None:
        self._state = state

    def collect(self) -> Iterator[Any]:
        started, health = self._state()
        for family, value in (
            (
                GaugeMetricFamily(
                    "gateway_ledger_up", "1 while the ledger writes rows, 0 while it cannot."
                ),
                int(started and health.healthy),
            ),
            (
                CounterMetricFamily(
                    "gateway_ledger_failures", "Ledger batches of which no row could be written."
                ),
                health.failed_batches,
            ),
            (
                CounterMetricFamily(
                    "gateway_ledger_failed_rows", "Ledger rows not written (each one answered 503)."
                ),
                health.failed_rows,
            ),
            (
                CounterMetricFamily(
                    "gateway_ledger_writer_restarts",
                    "Times the ledger writer stopped and was restarted.",
                ),
                health.writer_restarts,
            ),
            (
                GaugeMetricFamily(
                    "gateway_ledger_queued_rows", "Ledger rows waiting to be written."
                ),
                health.queued,
            ),
            (
                GaugeMetricFamily(
                    "gateway_ledger_oldest_queued_seconds", "Age of the oldest row waiting."
                ),
                health.oldest_queued_seconds,
            ),
            (
                GaugeMetricFamily("gateway_ledger_wal_bytes", "Size of the ledger's WAL file."),
                health.wal_bytes,
            ),
        ):
            family.add_metric([], value)
            yield family


class _StoreCollector(Collector):
    """The shared store as this instance sees it, read when Prometheus scrapes."""

    def __init__(self, state: Callable[[], StoreState | None]) -> None:
        self._state = state

    def collect(self) -> Iterator[Any]:
        state = self._state()
        if state is None:
            return
        failures = CounterMetricFamily(
            "gateway_store_failures",
            "Operations on the store that failed, by operation.",
            labels=["operation"],
        )
        for operation, count in state.failures.items():
            failures.add_metric([operation], count)
        yield failures
        shipping, view = state.shipping, state.view
        for family, value in (
            (
                GaugeMetricFamily(
                    "gateway_store_up", "1 while the store answers, 0 since an operation failed."
                ),
                int(state.reachable),
            ),
            (
                GaugeMetricFamily(
                    "gateway_config_listening",
                    "1 while the config listeners are up (0 while the store does not answer).",
                ),
                int(bool(state.listening)),
            ),
            (
                GaugeMetricFamily(
                    "gateway_balance_view_age_seconds",
                    "Time since this instance last re-read the balances successfully.",
                ),
                view.age_seconds,
            ),
            (
                CounterMetricFamily(
                    "gateway_balance_resync_failures", "Balance resyncs that failed."
                ),
                view.resync_failures,
            ),
            (
                GaugeMetricFamily(
                    "gateway_billing_admitting",
                    "1 while paid requests are admitted, 0 while the view is stale "
                    "or the outbox does not ship.",
                ),
                int(view.refusal is None),
            ),
            (
                GaugeMetricFamily("gateway_outbox_rows", "Ledger rows waiting in the outbox."),
                shipping.pending,
            ),
            (
                GaugeMetricFamily(
                    "gateway_outbox_oldest_unshipped_seconds",
                    "How long the oldest outbox row has waited to be shipped (at most).",
                ),
                shipping.oldest_unshipped_seconds,
            ),
            (
                CounterMetricFamily(
                    "gateway_outbox_ship_failures", "Outbox shipping passes that failed."
                ),
                shipping.failures,
            ),
            (
                CounterMetricFamily("gateway_outbox_shipped_rows", "Ledger rows shipped."),
                shipping.shipped,
            ),
        ):
            family.add_metric([], value)
            yield family
