"""API keys: generation, hashing, and lookup through the snapshot.

Only a key's SHA-256 is stored. A client may send its key as
`Authorization: Bearer <key>`, as a bare `Authorization: <key>`, or as
`x-api-key: <key>` (what the Anthropic SDK sends).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from starlette.datastructures import Headers

from config_store.schema import ApiKey, User
from config_store.snapshot import Snapshot
from gateway.errors import invalid_api_key

KEY_PREFIX = "gw-"
VISIBLE_PREFIX_LENGTH = 10


def new_key(prefix: str = KEY_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:VISIBLE_PREFIX_LENGTH]


def presented_key(headers: Headers) -> str | None:
    raw = headers.get("authorization")
    if raw:
        scheme, _, rest = raw.strip().partition(" ")
        key = rest.strip() if scheme.lower() == "bearer" else raw.strip()
        return key or None
    api_key = headers.get("x-api-key")
    return api_key.strip() or None if api_key else None


def authenticate(headers: Headers, snapshot: Snapshot) -> tuple[ApiKey, User]:
    key = presented_key(headers)
    if key is None:
        raise invalid_api_key(
            "No API key provided. Send 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
        )
    verified = snapshot.verified_keys.get(key)
    if verified is not None:
        return verified
    record = snapshot.keys.get(hash_key(key))
    if record is None:
        raise invalid_api_key("Invalid API key provided.")
    if record.revoked:
        raise invalid_api_key("This API key has been revoked.")
    user = snapshot.users.get(record.user_id)
    if user is None:
        raise invalid_api_key("This API key belongs to no user.")
    snapshot.verified_keys[key] = (record, user)
    return record, user


def admin_name(headers: Headers, admin_keys: Mapping[str, str]) -> str | None:
    """The name of the admin key presented as a bearer token, or None."""
    raw = headers.get("authorization", "")
    scheme, _, rest = raw.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return admin_key_name(rest.strip(), admin_keys)


def admin_key_name(presented: str, admin_keys: Mapping[str, str]) -> str | None:
    """The name of the admin key `presented` is, or None. Every configured key is
    compared in constant time (none is ever empty)."""
    given = presented.encode()
    found = None
    for name, key in admin_keys.items():
        if key and hmac.compare_digest(given, key.encode()):
            found = name
    return found
