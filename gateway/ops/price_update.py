"""Applying a price file to the catalogue: plan (pure), then write.

The plan is the same for a dry run and a real one, so both print the same
report; only the real run writes. New prices take effect from
`effective_from` (default now) as price points, so history is kept and a
request already running keeps the price it started with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from config_store.documents import model_to_json
from config_store.price_import import (
    PriceFileError,
    PriceRow,
    Report,
    detect,
    is_priced,
    match,
    new_prices,
    parse,
)
from config_store.schema import ModelConfig, PricePoint, Provider
from config_store.store import ConfigStore

ACTOR = "price-import"
Progress = Callable[[int, int], None]


def plan(
    document: Any,
    models: Mapping[str, ModelConfig],
    providers: Mapping[str, Provider],
    *,
    fmt: str | None = None,
    dry_run: bool = False,
    skip_malformed: bool = False,
    progress: Progress | None = None,
) -> tuple[Report, dict[str, dict[str, Decimal | None]]]:
    """The report, and the new prices per model id. Raises PriceFileError for a
    malformed file (with its rows), unless `skip_malformed` lists them as skipped."""
    chosen = fmt or detect(document)
    rows, bad = parse(document, chosen)
    if bad and not skip_malformed:
        listed = "; ".join(f"row {n}: {why}" for n, why in bad[:10])
        raise PriceFileError(f"{len(bad)} malformed rows; nothing was written. {listed}", bad)
    report = Report(format=chosen, dry_run=dry_run, rows_read=len(rows) + len(bad))
    report.skipped = [{"row": n, "name": why.split(":")[0], "reason": why} for n, why in bad]
    priced_by: dict[str, int] = {}
    updates: dict[str, dict[str, Decimal | None]] = {}
    for index, row in enumerate(rows, start=1):
        if progress is not None:
            progress(index, len(rows))
        _plan_row(row, models, providers, report, priced_by, updates)
    report.skipped.sort(key=lambda item: item["row"])
    report.coverage = coverage(models, updates)
    return report, updates


def _plan_row(
    row: PriceRow,
    models: Mapping[str, ModelConfig],
    providers: Mapping[str, Provider],
    report: Report,
    priced_by: dict[str, int],
    updates: dict[str, dict[str, Decimal | None]],
) -> None:
    if not row.input and not row.output:
        report.skipped.append({"row": row.number, "name": row.name, "reason": "zero price"})
        return
    found = match(row, models.values(), providers)
    if not found:
        report.skipped.append({"row": row.number, "name": row.name, "reason": "not in catalogue"})
        return
    report.matched += 1
    for model in found:
        earlier = priced_by.get(model.model_id)
        if earlier is not None:
            reason = f"{model.model_id} is already priced by row {earlier}"
            report.skipped.append({"row": row.number, "name": row.name, "reason": reason})
            continue
        priced_by[model.model_id] = row.number
        prices = new_prices(row, model)
        current = _prices(model)
        entry = {"model_id": model.model_id, "row": row.number, "name": row.name}
        if not is_priced(model):
            report.inserted.append({**entry, "new": _shown(prices)})
        elif prices != current:
            report.changed.append({**entry, "old": _shown(current), "new": _shown(prices)})
        else:
            report.unchanged.append(model.model_id)
            continue
        updates[model.model_id] = prices


def _prices(model: ModelConfig) -> dict[str, Decimal | None]:
    return {
        "input_price_per_million": model.input_price_per_million,
        "output_price_per_million": model.output_price_per_million,
        "cached_input_price_per_million": model.cached_input_price_per_million,
        "cache_write_price_per_million": model.cache_write_price_per_million,
    }


def _shown(prices: Mapping[str, Decimal | None]) -> dict[str, str | None]:
    return {k: None if v is None else str(v) for k, v in prices.items()}


def coverage(models: Mapping[str, ModelConfig], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Active models with a price, out of the active models (after the import)."""
    active = [m for m in models.values() if m.is_active]
    priced = [m for m in active if is_priced(m) or m.model_id in updates]
    percent = (Decimal(100) * len(priced) / len(active)).quantize(Decimal("0.1")) if active else 0
    return {
        "active_models": len(active),
        "priced": len(priced),
        "percent": str(percent),
        "unpriced": sorted(m.model_id for m in active if m not in priced),
    }


async def write(
    store: ConfigStore,
    models: Mapping[str, ModelConfig],
    updates: Mapping[str, Mapping[str, Decimal | None]],
    *,
    effective_from: datetime | None,
    reason: str,
    actor: str = ACTOR,
) -> int:
    """Write the planned prices: at once (one all-or-nothing change of every model),
    or as price points from a later time. Returns how many models got a price."""
    now = datetime.now(UTC)
    if effective_from is None or effective_from <= now:
        changes: list[tuple[str, str, Mapping[str, Any] | None]] = []
        for model_id, prices in updates.items():
            document = {**model_to_json(models[model_id]), "needs_price": False}
            document.update({k: None if v is None else str(v) for k, v in prices.items()})
            changes.append(("model", model_id, document))
        if changes:
            await store.change_many(changes, actor=actor, reason=reason)
        return len(changes)
    for model_id, prices in updates.items():
        inp, out = prices["input_price_per_million"], prices["output_price_per_million"]
        assert inp is not None and out is not None
        await store.add_price(
            PricePoint(
                model_id=model_id,
                effective_from=effective_from,
                input_price_per_million=inp,
                output_price_per_million=out,
                cached_input_price_per_million=prices["cached_input_price_per_million"],
                cache_write_price_per_million=prices["cache_write_price_per_million"],
                actor=actor,
                reason=reason,
                recorded_at=now,
            )
        )
    return len(updates)


__all__ = ["PriceFileError", "coverage", "plan", "write"]
