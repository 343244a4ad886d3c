"""Admin routes for users, their balances and their API keys.

    GET   /admin/users                      users with balances
    POST  /admin/users                      {id, name, tier_id}
    GET   /admin/users/{id}                 with the balance and open holds
    PATCH /admin/users/{id}                 name, tier_id
    POST  /admin/users/{id}/topup           {amount_usd, reason, idempotency_key?}
    POST  /admin/users/{id}/adjust          {amount_usd (signed), reason, idempotency_key?}
    GET   /admin/users/{id}/keys            prefix, name, created, last used, spent, limits
    POST  /admin/users/{id}/keys            {name, allowed_models, rpm, tpm, spend_cap_usd}:
                                            the key is in this answer and nowhere else
    PATCH /admin/keys/{key_id}              limits and name
    POST  /admin/keys/{key_id}/revoke

A balance never changes but through a ledger row: a top-up or an adjustment
is a row with its reason, applied through the same meter that holds and
settles requests, so the running gateway sees it at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.ledger_types import LedgerEntry, LedgerError
from billing.meter import UnknownAccount
from billing.pricing import NANO_PER_USD, usd
from config_store.documents import Fields, parse_decimal
from config_store.router_config import ConfigInvalid
from config_store.schema import ApiKey, User
from config_store.store import StoreError
from gateway.api.admin.changes import (
    admin_services,
    invalid,
    json_body,
    not_found,
    store_failure,
    writable_store,
)
from gateway.api.endpoint import JSON
from gateway.autoroute.decision import PRESETS
from gateway.errors import GatewayError, bad_request, unavailable
from gateway.proxy.auth import hash_key, key_prefix, new_key
from gateway.services import Services

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_MAX_CREDIT = Decimal(1_000_000)  # USD in one top-up or adjustment


def _user(services: Services, request: Request) -> User:
    user_id = request.path_params["user_id"]
    user = services.cache.snapshot.users.get(user_id)
    if user is None:
        raise not_found("user", user_id)
    return user


def _check_tier(services: Services, tier_id: str) -> None:
    if tier_id not in services.cache.snapshot.tiers:
        raise bad_request(f"No tier '{tier_id}'.", param="tier_id", code="invalid_value")


async def _user_view(services: Services, user: User) -> dict[str, Any]:
    try:
        balance = await services.meter.balance(user.id)
        available = await services.meter.available(user.id)
    except UnknownAccount:
        raise not_found("balance of user", user.id) from None
    except LedgerError as exc:
        raise unavailable(
            f"The balance cannot be read now: {exc}", code="store_unavailable"
        ) from exc
    return {
        "id": user.id,
        "name": user.name,
        "tier_id": user.tier_id,
        "balance_nano": balance,
        "balance_usd": usd(balance),
        "held_nano": balance - available,  # open holds: requests admitted, not yet settled
        "held_usd": usd(balance - available),
    }


async def list_users(request: Request) -> Response:
    services = admin_services(request)
    try:
        balances = await services.reports.balances()
    except LedgerError as exc:
        raise unavailable(str(exc), code="store_error") from exc
    data = []
    for user in sorted(services.cache.snapshot.users.values(), key=lambda u: u.id):
        stored = balances.get(user.id, (0, 0, 0))[0]
        balance = services.meter.cached_balance(user.id)
        balance = stored if balance is None else balance
        data.append(
            {
                "id": user.id,
                "name": user.name,
                "tier_id": user.tier_id,
                "balance_nano": balance,
                "balance_usd": usd(balance),
            }
        )
    return JSON({"object": "list", "data": data})


async def create_user(request: Request) -> Response:
    services = admin_services(request)
    try:
        f = Fields(await json_body(request), {"id", "name", "tier_id"}, "user")
        user = User(
            id=f.text("id", None, pattern=_ID),
            name=f.text("name", "", limit=200),
            tier_id=f.text("tier_id", next(iter(sorted(services.cache.snapshot.tiers)), "")),
        )
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    _check_tier(services, user.tier_id)
    try:
        created = await writable_store(services).put_user(user, overwrite=False)
    except StoreError as exc:
        raise store_failure(exc) from exc
    if not created:
        raise bad_request(f"A user '{user.id}' already exists.", param="id", code="duplicate")
    await services.cache.refresh()
    return JSON(await _user_view(services, user), status_code=201)


async def get_user(request: Request) -> Response:
    services = admin_services(request)
    return JSON(await _user_view(services, _user(services, request)))


async def update_user(request: Request) -> Response:
    services = admin_services(request)
    current = _user(services, request)
    try:
        f = Fields(await json_body(request), {"name", "tier_id"}, "user")
        user = User(
            current.id, f.text("name", current.name, limit=200), f.text("tier_id", current.tier_id)
        )
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    _check_tier(services, user.tier_id)
    try:
        await writable_store(services).put_user(user)
    except StoreError as exc:
        raise store_failure(exc) from exc
    await services.cache.refresh()
    return JSON(await _user_view(services, user))


def _nano(value: Any, name: str = "amount_usd") -> int:
    """USD as a decimal string (or number), either sign -> exact integer nano-USD."""
    text = str(value).strip() if isinstance(value, str | int | float) else value
    negative = isinstance(text, str) and text.startswith("-") and not isinstance(value, bool)
    magnitude = text[1:] if negative else value
    amount = parse_decimal(magnitude, name, high=_MAX_CREDIT) * NANO_PER_USD
    if amount != amount.to_integral_value():
        raise ConfigInvalid(f"'{name}' has more than 9 decimal places.", name)
    return -int(amount) if negative else int(amount)


async def topup(request: Request) -> Response:
    return await _credit(request, "topup")


async def adjust(request: Request) -> Response:
    return await _credit(request, "adjust")


async def _credit(request: Request, kind: str) -> Response:
    services = admin_services(request)
    user = _user(services, request)

    def entry(request_id: str, amount: int, reason: str) -> LedgerEntry:
        return LedgerEntry(
            request_id=request_id,
            user_id=user.id,
            kind=kind,
            amount_nano=amount,
            created_at=datetime.now(UTC).isoformat(),
            reason=reason,
        )

    return await credit(request, kind, user.id, entry)


async def credit(
    request: Request, kind: str, account: str, entry: Callable[[str, int, str], LedgerEntry]
) -> Response:
    """A top-up or an adjustment of `account` (a user's, or "team:<id>"), the
    ledger row made by `entry(request_id, amount_nano, reason)`. With an
    idempotency key, a replay is answered with the balance and writes nothing."""
    services = admin_services(request)
    try:
        f = Fields(await json_body(request), {"amount_usd", "reason", "idempotency_key"}, kind)
        if not f.has("amount_usd"):
            raise ConfigInvalid("'amount_usd' is required.", "amount_usd")
        amount = _nano(f.document["amount_usd"])
        reason = f.text("reason", "" if kind == "topup" else None, limit=500)
        idempotency = f.text("idempotency_key", "", pattern=_ID, allow_empty=True)
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    if amount == 0 or (kind == "topup" and amount < 0):
        raise bad_request(
            "A top-up is a positive amount; an adjustment a non-zero one.", param="amount_usd"
        )
    if kind == "adjust" and not reason.strip():
        raise bad_request("An adjustment needs a reason.", param="reason")
    await services.ensure_ledger()
    request_id = (
        f"{kind}:{account}:{idempotency}"
        if idempotency
        else f"{kind}:{services.request_ids.next()}"
    )
    async with services.admin_lock:  # one credit at a time: a replay is seen, never applied twice
        try:
            if idempotency and await services.ledger.has_entry(request_id):
                balance = await services.meter.balance(account)
                return JSON(
                    {"request_id": request_id, "replayed": True, "balance_usd": usd(balance)}
                )
            balance = await services.meter.credit(entry(request_id, amount, reason))
        except LedgerError as exc:
            raise unavailable(
                f"The ledger could not record it: {exc}", code="ledger_unavailable"
            ) from exc
    return JSON(
        {
            "request_id": request_id,
            "replayed": False,
            "amount_usd": usd(amount),
            "balance_nano": balance,
            "balance_usd": usd(balance),
        },
        status_code=201,
    )


def _key_limits(f: Fields, services: Services, current: ApiKey | None) -> dict[str, Any]:
    allowed = f.names("allowed_models") if f.has("allowed_models") else None
    if allowed is not None:
        known = services.cache.snapshot.models
        for name in allowed:
            if name not in known and name not in PRESETS:
                raise ConfigInvalid(f"No model '{name}'.", "allowed_models")
    cap: int | None = current.spend_cap_nano if current else None
    if f.has("spend_cap_usd"):
        raw = f.document["spend_cap_usd"]
        cap = None if raw is None else _nano(raw, "spend_cap_usd")
        if cap is not None and cap < 0:
            raise ConfigInvalid("'spend_cap_usd' must not be negative.", "spend_cap_usd")
    return {
        "name": f.text("name", current.name if current else "", limit=200),
        "rpm": f.integer("rpm", current.rpm if current else 0, 0, 10**9),
        "tpm": f.integer("tpm", current.tpm if current else 0, 0, 10**12),
        "allowed_models": allowed
        if allowed is not None
        else (current.allowed_models if current else ()),
        "spend_cap_nano": cap,
    }


_KEY_FIELDS = {"name", "allowed_models", "rpm", "tpm", "spend_cap_usd"}


def _key_view(key: ApiKey, stats: tuple[int, str | None] | None) -> dict[str, Any]:
    spent, last_used = stats or (0, None)
    return {
        "id": key.id,
        "prefix": key.prefix,
        "user_id": key.user_id,
        "name": key.name,
        "created_at": key.created_at.isoformat().replace("+00:00", "Z"),
        "last_used_at": last_used,
        "revoked": key.revoked,
        "rpm": key.rpm,
        "tpm": key.tpm,
        "allowed_models": list(key.allowed_models),
        "spend_cap_usd": None if key.spend_cap_nano is None else usd(key.spend_cap_nano),
        "spent_usd": usd(spent),
    }


async def create_key(request: Request) -> Response:
    services = admin_services(request)
    user = _user(services, request)
    try:
        f = Fields(await json_body(request), _KEY_FIELDS, "key")
        limits = _key_limits(f, services, None)
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    plain = new_key()
    key = ApiKey(
        key_hash=hash_key(plain),
        prefix=key_prefix(plain),
        user_id=user.id,
        created_at=datetime.now(UTC),
        **limits,
    )
    try:
        await writable_store(services).put_api_key(key, overwrite=False)
    except StoreError as exc:
        raise store_failure(exc) from exc
    await services.cache.refresh()
    return JSON({**_key_view(key, None), "key": plain}, status_code=201)


async def list_keys(request: Request) -> Response:
    services = admin_services(request)
    user = _user(services, request)
    keys = sorted(
        (k for k in services.cache.snapshot.keys.values() if k.user_id == user.id),
        key=lambda k: (k.created_at, k.key_hash),
    )
    try:
        stats = await services.reports.key_stats([k.id for k in keys])
    except LedgerError as exc:
        raise unavailable(str(exc), code="store_error") from exc
    return JSON({"object": "list", "data": [_key_view(k, stats.get(k.id)) for k in keys]})


def _key(services: Services, request: Request) -> ApiKey:
    key_id = request.path_params["key_id"]
    found = [k for k in services.cache.snapshot.keys.values() if k.id == key_id]
    if len(found) != 1:
        raise not_found("API key", key_id)
    return found[0]


async def _write_key(services: Services, key: ApiKey) -> Response:
    try:
        await writable_store(services).put_api_key(key)
    except StoreError as exc:
        raise store_failure(exc) from exc
    await services.cache.refresh()
    stats = await services.reports.key_stats([key.id])
    return JSON(_key_view(key, stats.get(key.id)))


async def update_key(request: Request) -> Response:
    services = admin_services(request)
    current = _key(services, request)
    try:
        f = Fields(await json_body(request), _KEY_FIELDS, "key")
        limits = _key_limits(f, services, current)
    except ConfigInvalid as exc:
        raise invalid(exc) from None
    return await _write_key(services, replace(current, **limits))


async def revoke_key(request: Request) -> Response:
    services = admin_services(request)
    current = _key(services, request)
    if current.revoked:
        raise GatewayError(409, f"The key '{current.id}' is already revoked.", code="conflict")
    return await _write_key(services, replace(current, revoked=True))


routes = [
    Route("/admin/users", list_users, methods=["GET"]),
    Route("/admin/users", create_user, methods=["POST"]),
    Route("/admin/users/{user_id}", get_user, methods=["GET"]),
    Route("/admin/users/{user_id}", update_user, methods=["PATCH", "PUT"]),
    Route("/admin/users/{user_id}/topup", topup, methods=["POST"]),
    Route("/admin/users/{user_id}/adjust", adjust, methods=["POST"]),
    Route("/admin/users/{user_id}/keys", list_keys, methods=["GET"]),
    Route("/admin/users/{user_id}/keys", create_key, methods=["POST"]),
    Route("/admin/keys/{key_id}", update_key, methods=["PATCH"]),
    Route("/admin/keys/{key_id}/revoke", revoke_key, methods=["POST"]),
]
