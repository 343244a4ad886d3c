"""The shape of the code that docs/architecture.md describes: small modules, and a
top level of `gateway/` that holds only the wiring."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "billing", "config_store")
MOST_LINES = 400
WIRING = {
    "__init__.py",
    "app.py",
    "backends.py",
    "background.py",
    "errors.py",
    "observe.py",
    "services.py",
    "settings.py",
}


def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MOST_LINES
    }
    assert long == {}


def test_the_top_level_of_gateway_is_wiring_only():
    assert {path.name for path in (ROOT / "gateway").glob("*.py")} == WIRING
