"""How the SQLite store's rows map to the schema's objects and documents, both ways."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from config_store.documents import (
    model_from_json,
    model_to_json,
    provider_from_json,
    provider_to_json,
    tier_from_json,
    tier_to_json,
)
from config_store.router_config import ConfigInvalid, ModelProfile, RouterConfig
from config_store.schema import (
    EPOCH,
    ApiKey,
    HistoryEntry,
    ModelConfig,
    PricePoint,
    PricingTier,
    Provider,
)

log = logging.getLogger("gateway.store")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entity:
    """How a versioned entity maps to its table: document <-> row."""

    table: str
    key: str
    read: Callable[[sqlite3.Row], dict[str, Any]]
    write: Callable[[Mapping[str, Any]], dict[str, Any]]
    key_of: Callable[[str], str | int] = lambda entity_id: entity_id


def _data(row: sqlite3.Row) -> dict[str, Any]:
    return dict(json.loads(row["data"]))


def _entities() -> dict[str, Entity]:
    def as_data(key: Callable[[Mapping[str, Any]], str | int], column: str) -> Any:
        return lambda doc: {column: key(doc), "data": json.dumps(dict(doc), sort_keys=True)}

    return {
        "router_config": Entity(
            "router_config", "id", _data, as_data(lambda _: 1, "id"), lambda _: 1
        ),
        "model_profile": Entity(
            "model_profiles", "model_id", _data, as_data(lambda d: d["model_id"], "model_id")
        ),
        "model": Entity(
            "model_configurations",
            "model_id",
            lambda row: model_to_json(model_of(row)),
            lambda doc: model_values(model_from_json(doc, id=doc["id"], created_at=EPOCH)),
        ),
        "provider": Entity(
            "providers",
            "id",
            lambda row: provider_to_json(provider_of(row)),
            lambda doc: provider_values(provider_from_json(doc)),
        ),
        "team": Entity("teams", "id", _data, as_data(lambda d: d["id"], "id")),
        "budget": Entity("budgets", "id", _data, as_data(lambda d: d["id"], "id")),
        "balance_alert": Entity("balance_alerts", "id", _data, as_data(lambda d: d["id"], "id")),
        "tier": Entity(
            "pricing_tiers",
            "id",
            lambda row: tier_to_json(
                PricingTier(row["id"], row["name"], Decimal(row["markup_percent"]))
            ),
            lambda doc: tier_values(tier_from_json(doc)),
        ),
    }


ENTITIES = _entities()
INSERT_PRICE = (
    "INSERT INTO model_prices (model_id, effective_from, input_price_per_million, "
    "output_price_per_million, cached_input_price_per_million, cache_write_price_per_million, "
    "actor, reason, recorded_at, applied) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def json_text(document: Mapping[str, Any] | None) -> str | None:
    return None if document is None else json.dumps(dict(document), sort_keys=True)


def price_values(point: PricePoint) -> tuple[Any, ...]:
    return (
        point.model_id,
        point.effective_from.astimezone(UTC).isoformat(),
        str(point.input_price_per_million),
        str(point.output_price_per_million),
        _text(point.cached_input_price_per_million),
        _text(point.cache_write_price_per_million),
        point.actor,
        point.reason,
        point.recorded_at.astimezone(UTC).isoformat(),
        int(bool(point.applied)),
    )


def price_of(row: sqlite3.Row) -> PricePoint:
    return PricePoint(
        model_id=row["model_id"],
        effective_from=datetime.fromisoformat(row["effective_from"]),
        input_price_per_million=Decimal(row["input_price_per_million"]),
        output_price_per_million=Decimal(row["output_price_per_million"]),
        cached_input_price_per_million=_dec(row["cached_input_price_per_million"]),
        cache_write_price_per_million=_dec(row["cache_write_price_per_million"]),
        actor=row["actor"],
        reason=row["reason"],
        recorded_at=datetime.fromisoformat(row["recorded_at"]),
        applied=bool(row["applied"]),
    )


def provider_values(provider: Provider) -> dict[str, Any]:
    return {**provider_to_json(provider), "enabled": int(provider.enabled)}


def model_values(model: ModelConfig) -> dict[str, Any]:
    return {
        **model_to_json(model),
        "is_active": int(model.is_active),
        "created_at": model.created_at.isoformat(),
        "fallbacks": json.dumps(list(model.fallbacks)),
        "needs_price": int(model.needs_price),
        "deprecated_at": None if model.deprecated_at is None else model.deprecated_at.isoformat(),
    }


def tier_values(tier: PricingTier) -> dict[str, Any]:
    return {"id": tier.id, "name": tier.name, "markup_percent": str(tier.markup_percent)}


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def provider_of(row: sqlite3.Row) -> Provider:
    return Provider(
        id=row["id"],
        kind=row["kind"],
        base_url=row["base_url"],
        api_key_env=row["api_key_env"],
        base_url_env=row["base_url_env"],
        api_key=row["api_key"],
        enabled=bool(row["enabled"]),
        display_name=row["display_name"],
        rpm=row["rpm"],
        tpm=row["tpm"],
        fallback_priority=row["fallback_priority"],
        connect_timeout=row["connect_timeout"],
        read_timeout=row["read_timeout"],
        total_timeout=row["total_timeout"],
    )


def model_of(row: sqlite3.Row) -> ModelConfig:
    return ModelConfig(
        id=row["id"],
        model_id=row["model_id"],
        provider=row["provider"],
        input_price_per_million=Decimal(row["input_price_per_million"]),
        output_price_per_million=Decimal(row["output_price_per_million"]),
        cached_input_price_per_million=_dec(row["cached_input_price_per_million"]),
        cache_write_price_per_million=_dec(row["cache_write_price_per_million"]),
        context_window_size=row["context_window_size"],
        max_output_tokens=row["max_output_tokens"],
        is_active=bool(row["is_active"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        upstream_model=row["upstream_model"],
        tokenizer=row["tokenizer"],
        note=row["note"],
        mode=row["mode"],
        fallbacks=tuple(json.loads(row["fallbacks"])),
        fallback_priority=row["fallback_priority"],
        needs_price=bool(row["needs_price"]),
        deprecated_at=None
        if row["deprecated_at"] is None
        else datetime.fromisoformat(row["deprecated_at"]),
    )


def api_key_of(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        key_hash=row["key_hash"],
        prefix=row["prefix"],
        user_id=row["user_id"],
        name=row["name"],
        revoked=bool(row["revoked"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        rpm=row["rpm"],
        tpm=row["tpm"],
        allowed_models=tuple(json.loads(row["allowed_models"])),
        spend_cap_nano=row["spend_cap_nano"],
    )


def _doc(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


def history_of(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(
        id=row["id"],
        entity=row["entity"],
        entity_id=row["entity_id"],
        action=row["action"],
        actor=row["actor"],
        reason=row["reason"],
        old=_doc(row["old"]),
        new=_doc(row["new"]),
        at=datetime.fromisoformat(row["at"]),
    )


def profiles_of(rows: Iterable[sqlite3.Row]) -> Iterable[ModelProfile]:
    """Profiles as stored; one that no longer validates is skipped (and logged),
    so that a bad row cannot stop the whole catalogue from loading."""
    for row in rows:
        try:
            yield ModelProfile.from_json(row["model_id"], json.loads(row["data"]))
        except (ConfigInvalid, ValueError) as exc:
            log.warning("skipping the invalid profile of %s: %s", row["model_id"], exc)


def documents_of(
    entity: str, rows: Iterable[sqlite3.Row], read: Callable[[Any], T]
) -> tuple[T, ...]:
    """JSON documents as stored; one that no longer validates is skipped (and
    logged), as a profile is."""
    found = []
    for row in rows:
        try:
            found.append(read(json.loads(row["data"])))
        except (ConfigInvalid, ValueError) as exc:
            log.warning("skipping an invalid %s: %s", entity, exc)
    return tuple(found)


def router_config_of(rows: Iterable[sqlite3.Row]) -> RouterConfig | None:
    for row in rows:
        try:
            return RouterConfig.from_json(json.loads(row["data"]))
        except (ConfigInvalid, ValueError) as exc:
            log.warning("ignoring the invalid router config: %s", exc)
    return None
