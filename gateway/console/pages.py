"""The console's HTML that the server writes itself: the sign-in page (the only
console page that answers without a session) and the headers every console
answer carries. The console proper is a static app in `static/`."""

from __future__ import annotations

import base64
import hashlib
from html import escape

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;min-height:100vh;display:grid;
place-items:center;background:#f3f4f6;color:#111827}
main{background:#fff;padding:2rem;border-radius:.75rem;box-shadow:0 1px 4px #0002;
width:min(26rem,92vw)}
h1{font-size:1.25rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin-bottom:.25rem}
input{width:100%;box-sizing:border-box;padding:.6rem;font:inherit;border:1px solid #9ca3af;
border-radius:.4rem}
button{margin-top:1rem;width:100%;padding:.6rem;font:inherit;font-weight:600;color:#fff;
background:#1d4ed8;border:0;border-radius:.4rem;cursor:pointer}
button:focus-visible,input:focus-visible{outline:3px solid #93c5fd}
p.error{color:#b91c1c;font-weight:600}p.hint{color:#4b5563;font-size:.875rem}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

# No inline script anywhere, no frames, no third-party origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

SIGN_IN_HEADERS = {
    **HEADERS,
    "content-security-policy": CONTENT_SECURITY_POLICY.replace(
        "style-src 'self'", f"style-src 'sha256-{_STYLE_HASH}'"
    ),
}


def sign_in_page(error: str = "") -> str:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in: gateway console</title><style>{_STYLE}</style></head>
<body><main>
<h1>Gateway console</h1>
{message}
<form method="post" action="/console/sign-in">
<label for="key">Admin key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
<p class="hint">The admin key is printed by <code>make run</code> and kept in the data
directory's <code>admin_key</code> file. Signing in keeps a session cookie in this
browser; the key itself is kept nowhere.</p>
</main></body></html>"""
