"""Signing in to the console, and what it refuses: a wrong key, any console
route without a session, a forged cross-site write, a signed-out cookie. The
admin API keeps answering scripts with the bearer key."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import csrf_fetch, screenshot, sign_in
from tests.harness import GatewayServer

ALICE = "alice-admin-key-0123456789abcdef0123"
GATEWAY_ENV = {"GATEWAY_ADMIN_KEYS": f"alice={ALICE}"}

GUARDED = [
    ("GET", "/console/"),
    ("GET", "/console/session"),
    ("GET", "/console/assets/app.js"),
    ("GET", "/console/assets/ui.js"),
    ("GET", "/console/assets/console.css"),
    ("GET", "/console/assets/pages/overview.js"),
    ("GET", "/console/assets/nothing.js"),
    ("POST", "/console/sign-out"),
    ("GET", "/admin/activity"),
]


def test_no_console_route_answers_without_a_signed_in_admin(module_gateway: GatewayServer):
    with httpx.Client(base_url=module_gateway.base_url) as client:
        for method, path in GUARDED:
            answer = client.request(method, path)
            if path == "/console/":
                assert answer.status_code == 303, path
                assert answer.headers["location"] == "/console/sign-in"
            else:
                assert answer.status_code == 401, (method, path, answer.text)
                assert answer.json()["error"]["code"] == "invalid_api_key"
        # A forged or stale cookie is no session either.
        for cookie in ("x", "e30.AAAA", "a" * 5000, "eyJhIjoiYWRtaW4iLCJlIjo5OTk5OTk5OTk5fQ.AAAA"):
            client.cookies.set("gateway_console", cookie)
            assert client.get("/console/session").status_code == 401
            assert client.get("/console/").status_code == 303
        client.cookies.clear()
        form = client.get("/console/sign-in")
        assert form.status_code == 200 and "Admin key" in form.text
        assert "script" not in form.headers["content-security-policy"].split("script-src")[0]
        for path in ("/", "/ui", "/admin", "/console"):
            assert client.get(path).headers["location"] == "/console/"
        # Scripts keep using the admin API with the bearer key, as before.
        bearer = {"authorization": f"Bearer {module_gateway.admin_key}"}
        assert client.get("/admin/activity", headers=bearer).status_code == 200
        assert client.get("/admin/users", headers=bearer).status_code == 200


def test_a_wrong_key_cannot_sign_in(module_gateway: GatewayServer, page: Page):
    page.goto(f"{module_gateway.base_url}/console/")
    assert page.url.endswith("/console/sign-in")
    page.get_by_label("Admin key").fill("sk-not-the-admin-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That is not an admin key.")
    assert page.context.cookies() == []
    # A user's API key is not an admin key either.
    page.get_by_label("Admin key").fill(module_gateway.demo_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That is not an admin key.")
    assert page.context.cookies() == []
    screenshot(page, "sign-in-refused")


def test_sign_in_keeps_the_key_out_of_the_page_and_the_url(
    module_gateway: GatewayServer, page: Page
):
    sign_in(page, module_gateway)
    expect(page.locator("#who")).to_have_text("Signed in as admin")
    expect(page.locator("[data-stat=requests]")).to_be_visible()
    [cookie] = page.context.cookies()
    assert cookie["name"] == "gateway_console"
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert module_gateway.admin_key not in cookie["value"]
    assert module_gateway.admin_key not in page.url
    stored = page.evaluate(
        "() => document.cookie + JSON.stringify(sessionStorage) + JSON.stringify(localStorage)"
    )
    assert "gateway_console" not in stored and module_gateway.admin_key not in stored
    screenshot(page, "overview")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "overview-phone")


def test_a_named_admin_key_signs_its_changes(module_gateway: GatewayServer, page: Page):
    sign_in(page, module_gateway, ALICE)
    expect(page.locator("#who")).to_have_text("Signed in as alice")
    changed = csrf_fetch(page, "PATCH", "/admin/tiers/free", {"markup_percent": "1"})
    assert changed["status"] == 200, changed
    bearer = {"authorization": f"Bearer {module_gateway.admin_key}"}
    history = httpx.get(
        f"{module_gateway.base_url}/admin/history",
        params={"entity": "tier", "entity_id": "free"},
        headers=bearer,
    ).json()["data"]
    assert history[0]["actor"] == "alice"


class _Evil(BaseHTTPRequestHandler):
    """A page on another origin (another port of the same host: same-site, so a
    SameSite=Strict cookie alone would not stop it) that forges writes."""

    target = ""

    def do_GET(self) -> None:
        topup = f"{self.target}/admin/users/demo/topup"
        pages = {
            "/form": f"""<form id="f" method="post" action="{topup}">
                <input name="amount_usd" value="100"></form>
                <script>document.getElementById("f").submit()</script>""",
            "/fetch": f"""<script>
                fetch("{topup}", {{method: "POST", mode: "no-cors", credentials: "include",
                  headers: {{"content-type": "text/plain"}},
                  body: JSON.stringify({{amount_usd: "100", reason: "forged"}})}})
                .finally(() => document.title = "sent");
                </script>""",
        }
        html = pages.get(self.path, "").encode()
        self.send_response(200 if html else 404)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(html)))
        self.end_headers()
        self.wfile.write(html)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def evil_site(module_gateway: GatewayServer) -> Iterator[str]:
    handler = type("Evil", (_Evil,), {"target": module_gateway.base_url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_forged_cross_site_write_is_refused(
    module_gateway: GatewayServer, page: Page, evil_site: str
):
    sign_in(page, module_gateway)
    before = module_gateway.balance("demo")
    rows = module_gateway.query("SELECT count(*) FROM ledger")[0][0]
    with page.expect_response(lambda r: r.url.endswith("/topup")) as refused:
        page.goto(f"{evil_site}/form")
    assert refused.value.status == 403
    assert refused.value.json()["error"]["code"] == "csrf_failed"
    page.goto(f"{evil_site}/fetch")
    expect(page).to_have_title("sent")
    # The console's own page without its token is refused too; with it, the write is made.
    page.goto(f"{module_gateway.base_url}/console/")
    status = page.evaluate(
        """() => fetch("/admin/users/demo/topup", {method: "POST",
            headers: {"content-type": "application/json"},
            body: JSON.stringify({amount_usd: "100", reason: "no token"})}).then(r => r.status)"""
    )
    assert status == 403
    assert module_gateway.balance("demo") == before
    assert module_gateway.query("SELECT count(*) FROM ledger")[0][0] == rows
    made = csrf_fetch(page, "POST", "/admin/users/demo/topup", {"amount_usd": "1", "reason": "ok"})
    assert made["status"] == 201, made
    assert module_gateway.balance("demo") == before + 1_000_000_000


def test_signing_out_ends_the_session(module_gateway: GatewayServer, page: Page):
    sign_in(page, module_gateway)
    [cookie] = page.context.cookies()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in")
    assert page.context.cookies() == []
    page.goto(f"{module_gateway.base_url}/console/")
    assert page.url.endswith("/console/sign-in")
    # The old cookie, replayed, opens nothing.
    replayed = httpx.get(
        f"{module_gateway.base_url}/console/session",
        cookies={"gateway_console": cookie["value"]},
    )
    assert replayed.status_code == 401
