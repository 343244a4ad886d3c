"""Firestore documents of the config entities, read into the schema's types and
written back.

Prices are stored as decimal strings; a number written by hand in the console
is read through its shortest text. A document that does not validate is
skipped and logged by the readers of many (`each_valid`, `valid_or_none`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from config_store.documents import (
    PRICE_FIELDS,
    model_from_json,
    model_to_json,
    provider_from_json,
    provider_to_json,
    tier_from_json,
    tier_to_json,
)
from config_store.router_config import ConfigInvalid, ModelProfile
from config_store.schema import (
    EPOCH,
    ApiKey,
    HistoryEntry,
    ModelConfig,
    PricePoint,
    PricingTier,
    User,
)

log = logging.getLogger("gateway.store")
T = TypeVar("T")


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value))  # a number written in the console: its shortest text


def read_moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return EPOCH


def _model_document(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored model document as `model_from_json` takes it: prices as strings."""
    document = {k: v for k, v in data.items() if k in _MODEL_KEYS}
    for name in PRICE_FIELDS:
        if document.get(name) is not None:
            document[name] = str(_decimal(document[name]))
    if "created_at" in document:
        document["created_at"] = read_moment(document["created_at"]).isoformat()
    if "id" in document:
        document["id"] = str(document["id"])
    return document


_MODEL_KEYS = set(model_to_json(ModelConfig("0", "x", "p", Decimal(0), Decimal(0), 1, 0)))


def read_model(data: Mapping[str, Any]) -> ModelConfig:
    document = _model_document(data)
    return model_from_json(document, id=str(document.get("id", "")), created_at=EPOCH)


def read_api_key(data: Mapping[str, Any]) -> ApiKey:
    return ApiKey(
        key_hash=data["key_hash"],
        prefix=data.get("prefix", ""),
        user_id=data["user_id"],
        name=data.get("name", ""),
        revoked=bool(data.get("revoked", False)),
        created_at=read_moment(data.get("created_at")),
        rpm=int(data.get("rpm", 0)),
        tpm=int(data.get("tpm", 0)),
        allowed_models=tuple(data.get("allowed_models") or ()),
        spend_cap_nano=None if data.get("spend_cap_nano") is None else int(data["spend_cap_nano"]),
    )


def api_key_data(key: ApiKey) -> dict[str, Any]:
    return {
        "key_hash": key.key_hash,
        "prefix": key.prefix,
        "user_id": key.user_id,
        "name": key.name,
        "revoked": key.revoked,
        "created_at": key.created_at.isoformat(),
        "rpm": key.rpm,
        "tpm": key.tpm,
        "allowed_models": list(key.allowed_models),
        "spend_cap_nano": key.spend_cap_nano,
    }


def read_price(data: Mapping[str, Any]) -> PricePoint:
    return PricePoint(
        model_id=data["model_id"],
        effective_from=read_moment(data["effective_from"]),
        input_price_per_million=Decimal(str(data["input_price_per_million"])),
        output_price_per_million=Decimal(str(data["output_price_per_million"])),
        cached_input_price_per_million=_decimal(data.get("cached_input_price_per_million")),
        cache_write_price_per_million=_decimal(data.get("cache_write_price_per_million")),
        actor=data.get("actor", ""),
        reason=data.get("reason", ""),
        recorded_at=read_moment(data.get("recorded_at")),
        # Documents written before the field: applied unless recorded ahead of time.
        applied=None if data.get("applied") is None else bool(data["applied"]),
    )


def price_data(point: PricePoint) -> dict[str, Any]:
    return {
        "model_id": point.model_id,
        "effective_from": point.effective_from.astimezone(UTC).isoformat(),
        "input_price_per_million": str(point.input_price_per_million),
        "output_price_per_million": str(point.output_price_per_million),
        "cached_input_price_per_million": _text(point.cached_input_price_per_million),
        "cache_write_price_per_million": _text(point.cache_write_price_per_million),
        "actor": point.actor,
        "reason": point.reason,
        "recorded_at": point.recorded_at.astimezone(UTC).isoformat(),
        "applied": bool(point.applied),
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def each_valid(kind: str, documents: Iterable[Any], parse: Callable[[Any], T]) -> tuple[T, ...]:
    """Every document that validates; one that does not is skipped and logged."""
    parsed = []
    for document in documents:
        try:
            parsed.append(parse(document))
        except (ConfigInvalid, KeyError, ValueError, TypeError) as exc:
            log.warning("skipping an invalid %s document: %s", kind, exc)
    return tuple(parsed)


def read_tier(data: Mapping[str, Any]) -> PricingTier:
    return tier_from_json(_tier_document(data))


def read_user(data: Mapping[str, Any]) -> User:
    return User(data["id"], data.get("name", ""), data["tier_id"])


def read_profile(data: Mapping[str, Any]) -> ModelProfile:
    return ModelProfile.from_json(data["model_id"], data)


def valid_or_none(kind: str, make: Callable[[], T]) -> T | None:
    """One document, or None (logged) when it does not validate: one bad
    document written by hand must not stop the whole catalogue from loading."""
    try:
        return make()
    except (ConfigInvalid, KeyError, ValueError, TypeError) as exc:
        log.warning("skipping an invalid %s document: %s", kind, exc)
        return None


def _tier_document(data: Mapping[str, Any]) -> dict[str, Any]:
    document = {k: data[k] for k in ("id", "name", "markup_percent") if k in data}
    if "markup_percent" in document:
        document["markup_percent"] = str(_decimal(document["markup_percent"]))
    return document


def history_id(number: int) -> str:
    return f"{number:012d}"


def read_history(data: Mapping[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        id=int(data["id"]),
        entity=data["entity"],
        entity_id=data["entity_id"],
        action=data["action"],
        actor=data.get("actor", ""),
        reason=data.get("reason", ""),
        old=None if data.get("old") is None else json.loads(data["old"]),
        new=None if data.get("new") is None else json.loads(data["new"]),
        at=read_moment(data["at"]),
    )


def stored_as_json(entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored document as the entity's JSON document (what the history keeps)."""
    if entity == "model":
        return model_to_json(read_model(data))
    if entity == "provider":
        return provider_to_json(provider_from_json(data))
    if entity == "tier":
        return tier_to_json(tier_from_json(_tier_document(data)))
    return dict(data)


def json_to_store(entity: str, document: Mapping[str, Any]) -> dict[str, Any]:
    if entity == "model":
        model = model_from_json(document, id=str(document["id"]), created_at=EPOCH)
        return model_to_json(model)
    if entity == "provider":
        return provider_to_json(provider_from_json(document))
    if entity == "tier":
        return tier_to_json(tier_from_json(document))
    return dict(document)
