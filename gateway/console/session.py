"""The console's sessions, pure: a signed token in an HttpOnly, SameSite=Strict
cookie, and the CSRF token that every write made with it must carry.

A session token names the admin key it was opened with, when it expires and a
random nonce, signed with a key derived from that admin key. Nothing is kept
on the server, so every instance that shares the admin keys accepts it, and
replacing an admin key ends every session opened with it. The CSRF token is
derived from the session token: a page of the console reads it from
`GET /console/session` (a cross-site page cannot read that answer) and sends it
in a header that a cross-site form or fetch cannot set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

COOKIE = "gateway_console"
CSRF_HEADER = "x-console-csrf"
_CONTEXT = b"gateway console session v1"
_MAX_TOKEN = 600  # characters: anything longer is not ours


@dataclass(frozen=True, slots=True)
class Session:
    admin: str  # the admin key's name, as the history records it
    expires: int  # unix seconds
    token: str
    csrf: str


def _signing_key(admin_key: str) -> bytes:
    return hmac.new(admin_key.encode(), _CONTEXT, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _csrf(key: bytes, token: str) -> str:
    return hmac.new(key, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()


def open_session(name: str, admin_key: str, *, now: int, lifetime: int, nonce: bytes) -> Session:
    """A new session for the admin key `name` (whose secret is `admin_key`)."""
    key = _signing_key(admin_key)
    payload = orjson.dumps({"a": name, "e": now + lifetime, "n": _b64(nonce)})
    signature = hmac.new(key, payload, hashlib.sha256).digest()
    token = f"{_b64(payload)}.{_b64(signature)}"
    return Session(name, now + lifetime, token, _csrf(key, token))


def read_session(token: str, admin_keys: Mapping[str, str], *, now: int) -> Session | None:
    """The session a cookie's token proves, or None: malformed, forged, signed
    with a key no longer configured, or expired."""
    if not token or len(token) > _MAX_TOKEN or token.count(".") != 1:
        return None
    encoded, signed = token.split(".")
    try:
        payload, signature = _unb64(encoded), _unb64(signed)
        fields = orjson.loads(payload)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(fields, dict):
        return None
    name, expires = fields.get("a"), fields.get("e")
    if not isinstance(name, str) or type(expires) is not int:
        return None
    admin_key = admin_keys.get(name)
    if not admin_key:
        return None
    key = _signing_key(admin_key)
    if not hmac.compare_digest(signature, hmac.new(key, payload, hashlib.sha256).digest()):
        return None
    if expires <= now:
        return None
    return Session(name, expires, token, _csrf(key, token))


def csrf_matches(session: Session, presented: str) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), presented.encode())


def cookie_token(cookie_header: str) -> str:
    """The console's token from a Cookie header ("" when absent): read by hand,
    so that a malformed cookie of someone else's cannot make this fail."""
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value.strip().strip('"')
    return ""
