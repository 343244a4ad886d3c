"""Who is signed in to the console, and whether a write made with the console's
cookie really comes from the console's own pages.

The admin routes accept a console session in place of the `Authorization`
header. A GET only reads (and a cross-site page can never read the answer); a
write must also come from this origin and carry the session's CSRF token in
`x-console-csrf`, which a cross-site form or fetch cannot set. A forged write
is refused with 403 `csrf_failed` and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from starlette.requests import HTTPConnection

from gateway.console.session import CSRF_HEADER, Session, cookie_token, csrf_matches, read_session
from gateway.errors import GatewayError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def signed_in(
    request: HTTPConnection, admin_keys: Mapping[str, str], signed_out: SignedOut
) -> Session | None:
    token = cookie_token(request.headers.get("cookie", ""))
    if not token or signed_out.ended(token):
        return None
    return read_session(token, admin_keys, now=int(time.time()))


def same_origin(request: HTTPConnection) -> bool:
    """False when the browser says the request comes from another origin (a page
    on another port of the same host is same-site, yet not same-origin)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin == f"{request.url.scheme}://{host}"


def check_write(request: HTTPConnection, session: Session, method: str) -> None:
    """Refuse a write that a cross-site page could have sent with the cookie."""
    if method in SAFE_METHODS:
        return
    if not same_origin(request):
        raise forged("This write comes from another origin.")
    if not csrf_matches(session, request.headers.get(CSRF_HEADER, "")):
        raise forged(f"A write from the console must carry the session's '{CSRF_HEADER}' header.")


def forged(message: str) -> GatewayError:
    return GatewayError(403, message, type="permission_error", code="csrf_failed")


def console_admin(
    request: HTTPConnection, admin_keys: Mapping[str, str], signed_out: SignedOut, method: str
) -> str | None:
    """The admin name of a console session that may make this request, None
    when there is no session; raises 403 for a write it may not make."""
    session = signed_in(request, admin_keys, signed_out)
    if session is None:
        return None
    check_write(request, session, method)
    return session.admin


class SignedOut:
    """Tokens signed out on this instance, kept until they would have expired
    anyway (a session is also ended everywhere by replacing its admin key)."""

    def __init__(self) -> None:
        self._ended: dict[str, int] = {}

    def end(self, session: Session) -> None:
        now = int(time.time())
        self._ended = {t: e for t, e in self._ended.items() if e > now}
        self._ended[session.token] = session.expires

    def ended(self, token: str) -> bool:
        return token in self._ended
