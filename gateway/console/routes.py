"""The console's routes, on the admin API's origin.

    GET  /console/            the app (signed in) or a redirect to the sign-in page
    GET  /console/sign-in     the sign-in form; POST it with `key` to open a session
    POST /console/sign-out    end the session (its CSRF token required)
    GET  /console/session     the signed-in admin's name and the CSRF token
    GET  /console/assets/...  the app's scripts and styles, shipped in this package
    GET  /, /ui, /admin       redirect to /console/

Nothing but the sign-in page answers without a session. The app calls the
admin API with the session cookie (see gateway.console.access).
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.api.endpoint import JSON, services_of
from gateway.console.access import check_write, same_origin, signed_in
from gateway.console.pages import HEADERS, SIGN_IN_HEADERS, sign_in_page
from gateway.console.session import COOKIE, Session, open_session
from gateway.errors import GatewayError, invalid_api_key
from gateway.proxy.auth import admin_key_name
from gateway.services import Services

log = logging.getLogger("gateway.console")

STATIC = Path(__file__).parent / "static"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_MAX_FORM = 4096  # bytes of a sign-in form


def _session(request: Request) -> tuple[Services, Session | None]:
    services = services_of(request)
    return services, signed_in(request, services.admin_keys, services.signed_out)


def _to_sign_in() -> Response:
    return RedirectResponse("/console/sign-in", status_code=303, headers=HEADERS)


async def app_page(request: Request) -> Response:
    _, session = _session(request)
    if session is None:
        return _to_sign_in()
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=HEADERS)


async def sign_in_form(request: Request) -> Response:
    _, session = _session(request)
    if session is not None:
        return RedirectResponse("/console/", status_code=303, headers=HEADERS)
    return HTMLResponse(sign_in_page(), headers=SIGN_IN_HEADERS)


async def sign_in(request: Request) -> Response:
    services = services_of(request)
    if not same_origin(request):
        return HTMLResponse(
            sign_in_page("Sign in from the console's own page."),
            status_code=403,
            headers=SIGN_IN_HEADERS,
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            return HTMLResponse(
                sign_in_page("That is not an admin key."), status_code=413, headers=SIGN_IN_HEADERS
            )
    key = (parse_qs(body.decode("utf-8", "replace")).get("key") or [""])[0].strip()
    name = admin_key_name(key, services.admin_keys) if key else None
    if name is None:
        log.warning("console sign-in refused: not an admin key")
        return HTMLResponse(
            sign_in_page("That is not an admin key."), status_code=401, headers=SIGN_IN_HEADERS
        )
    session = open_session(
        name,
        services.admin_keys[name],
        now=int(time.time()),
        lifetime=services.settings.console_session_seconds,
        nonce=secrets.token_bytes(16),
    )
    log.info("console sign-in by admin key '%s'", name)
    response = RedirectResponse("/console/", status_code=303, headers=HEADERS)
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=services.settings.console_session_seconds,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


async def sign_out(request: Request) -> Response:
    services, session = _session(request)
    if session is None:
        raise invalid_api_key("Not signed in to the console.")
    check_write(request, session, request.method)
    services.signed_out.end(session)
    response = JSON({"signed_out": True}, headers=HEADERS)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def session_info(request: Request) -> Response:
    _, session = _session(request)
    if session is None:
        raise invalid_api_key("Not signed in to the console.")
    return JSON(
        {"admin": session.admin, "csrf": session.csrf, "expires_at": session.expires},
        headers=HEADERS,
    )


async def asset(request: Request) -> Response:
    _, session = _session(request)
    if session is None:
        raise invalid_api_key("Not signed in to the console.")
    name = request.path_params["name"]
    path = (STATIC / name).resolve()
    media_type = _TYPES.get(path.suffix)
    if media_type is None or not path.is_relative_to(STATIC.resolve()) or not path.is_file():
        raise GatewayError(404, f"No console asset '{name}'.", code="not_found")
    return FileResponse(
        path, media_type=media_type, headers={**HEADERS, "cache-control": "no-cache"}
    )


async def to_console(request: Request) -> Response:
    return RedirectResponse("/console/", status_code=307)


routes = [
    Route("/console/", app_page, methods=["GET"]),
    Route("/console", to_console, methods=["GET"]),
    Route("/console/sign-in", sign_in_form, methods=["GET"]),
    Route("/console/sign-in", sign_in, methods=["POST"]),
    Route("/console/sign-out", sign_out, methods=["POST"]),
    Route("/console/session", session_info, methods=["GET"]),
    Route("/console/assets/{name:path}", asset, methods=["GET"]),
    Route("/", to_console, methods=["GET"]),
    Route("/ui", to_console, methods=["GET"]),
    Route("/admin", to_console, methods=["GET"]),
]
